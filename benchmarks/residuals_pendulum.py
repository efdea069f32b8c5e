"""Time of ``symglep residuals`` on the planar n-link pendulum (the model of ``derive_pendulum.py``).

Timed: the boundary residuals of every condition (``boundary.residuals``, theory §3) and their text
report, from a derivation made beforehand (not timed), CPU seconds of this process, median of
``--repeats`` runs, each with a cleared SymPy cache. The last columns give the size of the CIVP
residual of the first parameter (nodes of its expression tree) and of the text report.

This is a measurement script, not a test: it never asserts a time.

Usage::

    python benchmarks/residuals_pendulum.py [--min-n 2] [--max-n 8] [--repeats 3]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from pathlib import Path

from sympy.core.cache import clear_cache

sys.path.insert(0, str(Path(__file__).resolve().parent))

import symglep  # noqa: E402
from derive_pendulum import build_model  # noqa: E402
from machine import cpu_name, git_state, load_average  # noqa: E402
from symglep.boundary import residuals  # noqa: E402
from symglep.residual_report import render  # noqa: E402
from symglep.symbolic import node_count  # noqa: E402


def one_run(derivation) -> tuple[float, dict, str]:
    clear_cache()
    gc.collect()
    start = time.process_time()
    res = residuals(derivation)
    text = render(derivation.model, res, "text")
    return time.process_time() - start, res, text


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--min-n", type=int, default=2)
    parser.add_argument("--max-n", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--energy", default="cartesian", choices=("cartesian", "compact"))
    args = parser.parse_args(argv)
    print(f"# symglep residuals of the n-link pendulum ({args.energy} T; {git_state()}; {cpu_name()}; "
          f"load {load_average()})\n")
    print("| n | residuals + text report (CPU s, median) | runs | nodes of the CIVP residual of l1 | "
          "text report (characters) |")
    print("|---:|---:|---:|---:|---:|")
    for n in range(args.min_n, args.max_n + 1):
        derivation = symglep.derive(build_model(n, args.energy))
        times = []
        for _ in range(args.repeats):
            seconds, res, text = one_run(derivation)
            times.append(seconds)
        first = next(iter(res["civp"].residual_T.values()))
        print(f"| {n} | {statistics.median(times):.2f} | {len(times)} | {node_count(first)} | {len(text)} |",
              flush=True)


if __name__ == "__main__":
    main()
