"""Stack benchmark: the stacked echo (theory §9) of the bundled stacks, against BPTT through the stack in the
same process, and optionally against the committed kernels of another tree (``--against``: a checkout's
``generated/<stack>/numba/kernels.py``, loaded as a module of its own; the same arguments, so the same
numbers are checked to agree bit for bit before timing).

Each row: one warm-up call, then the median of ``--repeats`` interleaved calls (B sequences of K steps,
centred echo, β = 1e-4). A measurement script, not a test: it never asserts a time.

Usage::

    python benchmarks/stack_echo.py [--stacks stack_chain_hru stack_hru stack_hssm stack_beads]
        [--batch 4] [--steps 1000] [--repeats 9] [--against /path/to/other/checkout]
"""

from __future__ import annotations

import argparse
import importlib
import os
import pathlib
import shutil
import sys
import tempfile
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
DT, BETA = 0.05, 1e-4


def _module(path: pathlib.Path, name: str):
    """``path`` imported as module ``name`` from a fresh temporary copy (Numba caches next to a module's
    file: a copy keeps the other checkout clean and its cache from mixing with ours)."""
    folder = tempfile.mkdtemp(prefix="symglep-bench-")
    shutil.copy(path, os.path.join(folder, f"{name}.py"))
    sys.path.insert(0, folder)
    return importlib.import_module(name)


def row(name: str, batch: int, steps: int, repeats: int, against: pathlib.Path | None) -> dict:
    """Median wall times (ms) of the echo, BPTT and, with ``against``, the other tree's echo."""
    import symglep

    stack = symglep.load_system(str(ROOT / "examples" / f"{name}.py"))
    module = symglep.compile(stack, dt=DT).module.module  # the raw Numba module: one thread, no batch split
    rng = np.random.default_rng(0)
    theta = stack.draw_parameters(rng)
    x = 0.3 * rng.normal(size=(batch, steps + 1, stack.n_inputs))
    y = 0.3 * rng.normal(size=(batch, steps + 1, stack.n_targets))
    q0, p0 = 0.2 * rng.normal(size=(2, batch, stack.n))
    calls = {"echo": lambda: module.gradient(theta, q0, p0, x, y, DT, 0.0, BETA, 2, False),
             "bptt": lambda: module.bptt_gradient(theta, q0, p0, x, y, DT, 0.0)}
    if against is not None:
        other = _module(against / "generated" / name / "numba" / "kernels.py", f"other_{name}")
        calls["other echo"] = lambda: other.gradient(theta, q0, p0, x, y, DT, 0.0, BETA, 2, False)
        same = np.array_equal(calls["echo"]()[1], calls["other echo"]()[1])
        if not same:
            raise SystemExit(f"{name}: the two trees' echo gradients differ; compare like with like")
    times = {k: [] for k in calls}
    for f in calls.values():
        f()
    for _ in range(repeats):
        for k, f in calls.items():
            t = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t)
    return {k: 1e3 * float(np.median(v)) for k, v in times.items()}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stacks", nargs="+", default=["stack_chain_hru", "stack_hru", "stack_hssm", "stack_beads"])
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--against", type=pathlib.Path, help="another checkout whose committed stack kernels to time")
    args = ap.parse_args(argv)
    head = "| stack | B | K | echo (ms) | BPTT (ms) | echo / BPTT |" + (" other echo (ms) | echo / other |"
                                                                          if args.against else "")
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for name in args.stacks:
        if args.against and not (args.against / "generated" / name).is_dir():
            print(f"| {name} | (not in {args.against}) |")
            continue
        t = row(name, args.batch, args.steps, args.repeats, args.against)
        line = (f"| {name} | {args.batch} | {args.steps} | {t['echo']:.2f} | {t['bptt']:.2f} | "
                f"{t['echo'] / t['bptt']:.2f} |")
        if args.against:
            line += f" {t['other echo']:.2f} | {t['echo'] / t['other echo']:.2f} |"
        print(line, flush=True)


if __name__ == "__main__":
    main()
