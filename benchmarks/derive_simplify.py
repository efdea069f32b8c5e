"""Cost of the readable forms: ``symglep.derive`` of the n-link pendulum with ``simplify`` none / fast / full,
against the code before the readable forms (another checkout, ``--before PATH``).

Each configuration runs in its own subprocess (``PYTHONPATH`` = the checkout), builds the model of
``benchmarks/derive_pendulum.py`` (Cartesian energy) and times ``symglep.derive`` ``--repeats`` times,
each with a cleared sympy cache; the table shows the median wall seconds and its ratio to "before".
A measurement script: it never asserts a time.

Usage::

    python benchmarks/derive_simplify.py [--n 8] [--repeats 3] [--before /work/main] [--full]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
CHILD = r"""
import gc, inspect, json, sys, time
sys.path.insert(0, {bench!r})
from sympy.core.cache import clear_cache
import symglep
import derive_pendulum
model = derive_pendulum.build_model({n}, "cartesian")
kwargs = {{"simplify": {mode!r}}} if {mode!r} and "simplify" in inspect.signature(symglep.derive).parameters else {{}}
times = []
for _ in range({repeats}):
    clear_cache(); gc.collect()
    getattr(symglep.derivation, "forget_derivations", lambda: None)()  # absent before 2026-12
    start = time.perf_counter()
    symglep.derive(model, **kwargs)
    times.append(time.perf_counter() - start)
print(json.dumps(times))
"""


def run(checkout: str, mode: str | None, n: int, repeats: int) -> list[float]:
    env = dict(os.environ, PYTHONPATH=checkout)
    code = CHILD.format(bench=str(HERE), n=n, mode=mode, repeats=repeats)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--before", default="/work/main", help="checkout of the code before the readable forms")
    parser.add_argument("--full", action="store_true", help="also time simplify='full'")
    args = parser.parse_args(argv)
    here = str(HERE.parent)
    rows = [("before (" + args.before + ")", args.before, None), ("simplify=none", here, "none"),
            ("simplify=fast (default)", here, "fast")] + ([("simplify=full", here, "full")] if args.full else [])
    results = [(label, run(path, mode, args.n, args.repeats)) for label, path, mode in rows]
    base = statistics.median(results[0][1])
    print(f"symglep.derive, {args.n}-link pendulum (Cartesian T), median of {args.repeats} runs, wall seconds\n")
    print("| configuration | runs (s) | median (s) | / before |\n|---|---|---:|---:|")
    for label, times in results:
        med = statistics.median(times)
        print(f"| {label} | {', '.join(f'{t:.2f}' for t in times)} | {med:.2f} | {med / base:.2f}× |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
