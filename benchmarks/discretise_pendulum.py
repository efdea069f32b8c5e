"""Cost of ``symglep generate`` on the n-link pendulum: discretise (SymEngine derivatives) against
the same discretisation with ``sympy.diff``, and render.

The model is ``benchmarks/derive_pendulum.py``'s planar n-link pendulum (Cartesian kinetic energy,
not separable: the implicit midpoint rule). Its discretisation (theory §6) differentiates the
midpoint momenta again for the Newton matrices, the tangents and the adjoint's vector–Jacobian
products; ``symglep.discrete`` takes those derivatives through SymEngine
(``symglep.fastdiff.gradient``). The **baseline** is the same discretisation with every such
derivative taken by ``sympy.diff`` (what it did before), run in this process on the same
derivation; the two schemes are compared entry by entry (``agree``: every output expression equal
after ``expand``, checked at n ≤ 4, where expanding is cheap; the rendered source lengths are
printed for all n). **render** is the Numba module's rendering (one ``cse`` per function, printing).

CPU seconds of this process (``time.process_time``), medians of ``--repeats`` runs, each from a
cleared SymPy cache; the baseline runs once above ``--baseline-max`` seconds of its first run.
This is a measurement script, not a test: it never asserts a time.

Usage::

    python benchmarks/discretise_pendulum.py [--sizes 2,4,6,8] [--repeats 3]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from pathlib import Path
from unittest import mock

import sympy as sp
from sympy.core.cache import clear_cache

sys.path.insert(0, str(Path(__file__).resolve().parent))

from derive_pendulum import build_model  # noqa: E402
from machine import cpu_name, git_state, load_average  # noqa: E402

import symglep.discrete as discrete  # noqa: E402
import symglep.fastdiff as fastdiff  # noqa: E402
from symglep.codegen.render import render_numba  # noqa: E402
from symglep.derivation import derive  # noqa: E402


def sympy_gradient(expr, symbols) -> list:
    """The baseline: every derivative by ``sympy.diff``."""
    return [sp.diff(expr, s) for s in symbols]


def cpu(fn):
    """``(CPU seconds, result)`` of one call from a cleared SymPy cache."""
    clear_cache()
    gc.collect()
    start = time.process_time()
    result = fn()
    return time.process_time() - start, result


def timed(fn, repeats: int, once_above: float):
    """``(median CPU seconds, runs, result)``: one run when the first takes over ``once_above`` s."""
    first, result = cpu(fn)
    times = [first]
    if first <= once_above:
        times += [cpu(fn)[0] for _ in range(repeats - 1)]
    return statistics.median(times), len(times), result


def build(d, integrator: str = "auto"):
    """A fresh scheme (not the one :func:`symglep.discrete.discretise` remembers)."""
    return discrete._build(d, integrator)


def same_scheme(a, b) -> bool:
    """Every output expression of ``a`` equals ``b``'s after ``expand``."""
    for fa, fb in zip(a.functions, b.functions):
        for (_, ea), (_, eb) in zip(fa.outputs, fb.outputs):
            if any(sp.expand(x - y) != 0 for x, y in zip(ea, eb)):
                return False
    return len(a.functions) == len(b.functions)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="2,4,6,8", help="pendulum sizes n, comma-separated")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--baseline-max", type=float, default=20.0,
                        help="run the baseline once when its first run takes longer (seconds)")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]

    print(f"# generate of the n-link pendulum ({git_state()}; {cpu_name()}; load {load_average()})\n")
    print("| n | discretise (s) | discretise, sympy.diff (s) | **speed-up** | render (s) | source (chars) "
          "| agree |")
    print("|---:|---:|---:|---:|---:|---:|:---:|")
    for n in sizes:
        d = derive(build_model(n, "cartesian"), simplify="none")
        t_new, runs_new, scheme = timed(lambda: build(d), args.repeats, args.baseline_max)
        with mock.patch.object(discrete, "gradient", sympy_gradient), \
                mock.patch.object(fastdiff, "gradient", sympy_gradient):  # what discrete.gradients calls
            t_old, runs_old, old = timed(lambda: build(d), args.repeats, args.baseline_max)
        t_render, _, source = timed(lambda: render_numba(scheme, "x"), args.repeats, args.baseline_max)
        old_source = render_numba(old, "x")
        agree = ("yes" if same_scheme(scheme, old) else "NO") if n <= 4 else \
            ("same source" if old_source == source else "—")
        print(f"| {n} | {t_new:.2f} ({runs_new}) | {t_old:.2f} ({runs_old}) | **{t_old / t_new:.1f}×** "
              f"| {t_render:.2f} | {len(source)} | {agree} |", flush=True)


if __name__ == "__main__":
    main()
