"""Cold and warm ``symglep check`` of every bundled example, and what its first calls compile.

For each example: **cold** — a fresh process with an empty kernel cache runs
``symglep check EXAMPLE`` (derive, generate, compile what the check calls, run it);
**warm** — the same command again on the filled cache. Wall seconds, medians of
``--repeats`` runs each (a cold run gets its own empty cache every time). In the cold run each
kernel's first call (its Numba compile, or its load from Numba's cache) is timed and listed.
**baseline**: ``python -c "import symglep.cli, numba"`` in a fresh process, the floor every
command pays, measured in the same run; the table shows cold / baseline.

This is a measurement script, not a test: it never asserts a time.

Usage::

    python benchmarks/compile_times.py                   # every example, prints a Markdown table
    python benchmarks/compile_times.py --repeats 3 harmonic_oscillator double_pendulum
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from machine import ROOT, cpu_name, git_state, load_average  # noqa: E402

# Runs the CLI with each kernel's first call timed; prints {"kernels": {name: seconds}} last.
CHILD = r"""
import json, sys, time
from symglep import kernel_module
first = kernel_module._Kernel._first_call
times = {}
def timed(self, args):
    start = time.perf_counter()
    try:
        return first(self, args)
    finally:
        times[self.name] = times.get(self.name, 0.0) + time.perf_counter() - start
kernel_module._Kernel._first_call = timed
from symglep.cli import main
try:
    main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
else:
    code = 0
print(json.dumps({"kernels": times, "exit": code}))
"""

BASELINE = "import symglep.cli, numba"


def examples() -> list:
    """Every bundled example that defines a model or a stack (file stems)."""
    return sorted(p.stem for p in (ROOT / "examples").glob("*.py")
                  if "\nmodel = " in p.read_text() or "\nstack = " in p.read_text())


def run(args: list, cache: str) -> tuple:
    """(wall seconds, per-kernel first-call seconds) of one ``symglep check`` in a fresh process."""
    env = dict(os.environ, SYMGLEP_CACHE_DIR=cache)
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", CHILD, "check", *args], capture_output=True, text=True, env=env,
                         cwd=ROOT)
    wall = time.perf_counter() - start
    lines = out.stdout.strip().splitlines()
    report = json.loads(lines[-1]) if lines and lines[-1].startswith("{") else {"exit": out.returncode}
    if report["exit"] not in (0, None):
        message = (out.stderr.strip() or out.stdout.strip()).splitlines()
        raise CheckFailed(message[-1] if message else f"exit {report['exit']}")
    return wall, report["kernels"]


class CheckFailed(Exception):
    """``symglep check`` exited non-zero (a refusal or a failed check): the row says so, the table goes on."""


def baseline(repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", BASELINE], check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="example stems (default: every bundled example)")
    parser.add_argument("--repeats", type=int, default=1, help="runs of each (cold and warm) [1]")
    args = parser.parse_args(argv)
    names = args.names or examples()
    base = baseline(max(3, args.repeats))
    print(f"# cold and warm `symglep check` ({git_state()}; {cpu_name()}; load {load_average()}; "
          f"{os.cpu_count()} cores)\n")
    print(f"baseline (`python -c \"{BASELINE}\"`): {base:.2f} s\n")
    print("| example | cold (s) | warm (s) | cold / baseline | first calls in the cold run (s) |")
    print("|---|---:|---:|---:|---|")
    for name in names:
        target = [str(ROOT / "examples" / f"{name}.py")]
        colds, warms, kernels = [], [], {}
        try:
            for _ in range(args.repeats):
                with tempfile.TemporaryDirectory() as cache:
                    wall, kernels = run(target, cache)
                    colds.append(wall)
                    warms.append(run(target, cache)[0])
        except CheckFailed as exc:
            print(f"| {name} | – | – | – | check exited non-zero: {str(exc)[:160]} |", flush=True)
            continue
        cold, warm = statistics.median(colds), statistics.median(warms)
        listed = ", ".join(f"{k} {v:.1f}" for k, v in sorted(kernels.items(), key=lambda kv: -kv[1]))
        print(f"| {name} | {cold:.1f} | {warm:.1f} | {cold / base:.1f} | {listed} |", flush=True)


if __name__ == "__main__":
    main()
