"""Derivation time of the planar n-link pendulum: ``symglep.derive`` vs ``LagrangesMethod``.

The system: n links in ABSOLUTE angles (``th_i`` measured from the downward
vertical), link i of length ``l_i`` carrying a point mass ``m_i`` at its end,
gravity ``g`` a constant (9.81); lengths and masses are learnable parameters
(``positive=True``). Both routes start from the same kinetic energy ``T`` and
potential energy ``V`` written with ``dynamicsymbols``; ``L = T - V``.

Two ways of writing ``T`` are benchmarked (``--energy``):

* ``cartesian``: ``T = Σ_k m_k (ẋ_k² + ẏ_k²)/2`` with ``x_k = Σ_{i≤k} l_i sin th_i``,
  ``y_k = −Σ_{i≤k} l_i cos th_i`` and the velocities obtained by ``diff(t)``
  (how ``T`` is usually typed in from the positions);
* ``compact``: ``T = Σ_ij μ_max(i,j) l_i l_j cos(th_i − th_j) ẇ_i ẇ_j / 2`` with
  ``μ_i = Σ_{k≥i} m_k`` (the hand-reduced form, as in ``examples/double_pendulum.py``).

Timed work (each run starts with a cleared sympy cache and a ``gc.collect()``):

* symglep: ``symglep.derive(model)``; building ``symglep.Model`` (rewriting to
  plain symbols) is timed separately; ``euler_lagrange(model)`` alone (M and f
  only, the part of ``derive`` that ``LagrangesMethod`` also does) is reported
  for reference.
* sympy: ``LagrangesMethod(L, q)``, ``.form_lagranges_equations()``,
  ``.mass_matrix`` and ``.forcing``.

Times are CPU seconds of this process (``time.process_time``: sympy is
single-threaded, and CPU time is less disturbed than wall time by other work on
a shared machine); a wall-clock ratio is reported too. Each time is the median
of ``--repeats`` runs; a route whose first run takes longer than ``--slow`` CPU
seconds is run only once at that n (the "runs" column says how many runs each
median is over). Op counts are ``sympy.count_ops``
summed over the entries (``symglep.symbolic.op_count``; the LagrangesMethod
results are first rewritten in the same plain symbols). "M agrees" / "f agrees"
compare both routes' mass matrix / forcing at one random numeric point.

This is a measurement script, not a test: it never asserts a time.

Usage::

    python benchmarks/derive_pendulum.py [--min-n 3] [--max-n 10] [--repeats 3]
        [--energy cartesian|compact|both] [--slow 10] [--write docs/benchmarks-derive.md]
    python benchmarks/derive_pendulum.py --profile 8 [--energy cartesian]   # cProfile of derive
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import random
import shlex
import statistics
import sys
import time
from pathlib import Path

import sympy as sp
from sympy.core.cache import clear_cache
from sympy.physics.mechanics import LagrangesMethod, dynamicsymbols

import symglep
from symglep.derivation import forget_derivations
from machine import cpu_name, git_state, load_average  # noqa: E402
from symglep.mechanics import euler_lagrange
from symglep.symbolic import op_count

G_VALUE = 9.81
ENERGIES = ("cartesian", "compact")


# -- the system -----------------------------------------------------------------
def pendulum(n: int, energy: str):
    """``(th, lengths, masses, g, T, V)`` of the n-link pendulum in absolute angles."""
    t = dynamicsymbols._t
    th = list(dynamicsymbols(f"th1:{n + 1}"))
    lengths = list(sp.symbols(f"l1:{n + 1}", positive=True))
    masses = list(sp.symbols(f"m1:{n + 1}", positive=True))
    g = sp.Symbol("g", positive=True)
    if energy == "cartesian":
        xs = [sum((lengths[i] * sp.sin(th[i]) for i in range(k + 1)), sp.S.Zero) for k in range(n)]
        ys = [-sum((lengths[i] * sp.cos(th[i]) for i in range(k + 1)), sp.S.Zero) for k in range(n)]
        kinetic = sum((masses[k] * (xs[k].diff(t) ** 2 + ys[k].diff(t) ** 2) for k in range(n)),
                      sp.S.Zero) / 2
        potential = g * sum((masses[k] * ys[k] for k in range(n)), sp.S.Zero)
    elif energy == "compact":
        w = [x.diff(t) for x in th]
        below = [sum(masses[i:], sp.S.Zero) for i in range(n)]  # mass carried by link i
        kinetic = sum((below[max(i, j)] * lengths[i] * lengths[j] * w[i] * w[j]
                       * (sp.cos(th[i] - th[j]) if i != j else 1)
                       for i in range(n) for j in range(n)), sp.S.Zero) / 2
        potential = -g * sum((below[i] * lengths[i] * sp.cos(th[i]) for i in range(n)), sp.S.Zero)
    else:
        raise ValueError(f"unknown energy form {energy!r}")
    return th, lengths, masses, g, kinetic, potential


def build_model(n: int, energy: str) -> symglep.Model:
    th, lengths, masses, g, kinetic, potential = pendulum(n, energy)
    return symglep.Model(kinetic - potential, th, parameters=[*lengths, *masses],
                         constants={g: G_VALUE}, name=f"pendulum{n}_{energy}")


# -- timing ---------------------------------------------------------------------
def timed(fn):
    """``(Clock, result)`` of one cold-cache call (SymPy's cache and symglep's remembered derivations)."""
    clear_cache()
    forget_derivations()
    gc.collect()
    cpu, wall = time.process_time(), time.perf_counter()
    result = fn()
    return Clock(time.process_time() - cpu, time.perf_counter() - wall), result


class Clock:
    """CPU seconds of this process (the reported time) and wall seconds of one call."""

    def __init__(self, cpu: float, wall: float):
        self.cpu, self.wall = cpu, wall

    def __repr__(self) -> str:
        return f"{self.cpu:.3f}s cpu/{self.wall:.3f}s wall"


def run_symglep(n, energy):
    model_time, model = timed(lambda: build_model(n, energy))
    derive_time, derivation = timed(lambda: symglep.derive(model))
    el_time, _ = timed(lambda: euler_lagrange(model))
    return model_time, derive_time, el_time, model, derivation


def run_lagranges(n, energy):
    th, _, _, _, kinetic, potential = pendulum(n, energy)
    lagrangian = kinetic - potential  # built outside the timed region, like the symglep model

    def work():
        lm = LagrangesMethod(lagrangian, th)
        lm.form_lagranges_equations()
        return lm.mass_matrix, lm.forcing

    seconds, (mass, forcing) = timed(work)
    return seconds, mass, forcing


def median_runs(fn, repeats: int, slow: float, clock_of):
    """Run ``fn`` up to ``repeats`` times (once if the first run exceeds ``slow`` CPU seconds)."""
    results = [fn()]
    if clock_of(results[0]).cpu <= slow:
        results += [fn() for _ in range(repeats - 1)]
    return results


def median(clocks, attr="cpu") -> float:
    return statistics.median(getattr(c, attr) for c in clocks)


# -- checks ---------------------------------------------------------------------
def to_plain(model: symglep.Model, n: int) -> dict:
    """``th_i(t)' -> th_i_dot`` and ``th_i(t) -> th_i``: LagrangesMethod output in symglep's symbols."""
    t = dynamicsymbols._t
    mapping = {}
    for user, q, v in zip(dynamicsymbols(f"th1:{n + 1}"), model.q, model.v):
        mapping[sp.Derivative(user, t)] = v
        mapping[user] = q
    return mapping


def random_point(model: symglep.Model, seed: int = 20240607) -> dict:
    rng = random.Random(seed)
    point = {}
    for s in (*model.q, *model.v):
        point[s] = sp.Float(rng.uniform(-1.2, 1.2))
    for s in model.parameters:
        point[s] = sp.Float(rng.uniform(0.5, 2.0))
    point.update({s: sp.Float(value) for s, value in model.constants.items()})
    return point


def numeric(matrix: sp.Matrix, point: dict) -> list[complex]:
    return [complex(sp.sympify(e).xreplace(point).evalf()) for e in matrix]


def agree(a: sp.Matrix, b: sp.Matrix, point: dict, rtol: float = 1e-9) -> tuple[bool, float]:
    if a.shape != b.shape:
        return False, float("inf")
    va, vb = numeric(a, point), numeric(b, point)
    scale = max(1.0, max(abs(x) for x in va + vb))
    err = max(abs(x - y) for x, y in zip(va, vb)) / scale
    return err < rtol, err


# -- report ---------------------------------------------------------------------
def machine_info() -> list[str]:
    load = load_average()
    return [
        f"- platform: {platform.platform()}",
        f"- CPU: {cpu_name()}, {os.cpu_count()} logical CPUs (load average at start: {load})",
        f"- python: {platform.python_version()} ({platform.python_implementation()})",
        f"- sympy: {sp.__version__}",
        f"- symglep: {symglep.__version__}, git {git_state(('symglep',))}",
    ]


def fmt_s(seconds: float) -> str:
    return f"{seconds:.3f}" if seconds < 10 else f"{seconds:.1f}"


def benchmark(energy: str, ns, repeats: int, slow: float, log) -> tuple[list[str], list[dict]]:
    rows = []
    for n in ns:
        log(f"[{energy}] n={n}: symglep ...")
        sg = median_runs(lambda: run_symglep(n, energy), repeats, slow, lambda r: r[1])
        log(f"[{energy}] n={n}: symglep derive {[r[1] for r in sg]}; LagrangesMethod ...")
        lm = median_runs(lambda: run_lagranges(n, energy), repeats, slow, lambda r: r[0])
        log(f"[{energy}] n={n}: LagrangesMethod {[r[0] for r in lm]}")
        _, _, _, model, derivation = sg[-1]
        _, lm_mass, lm_forcing = lm[-1]
        plain = to_plain(model, n)
        lm_mass = lm_mass.xreplace(plain)
        lm_forcing = lm_forcing.xreplace(plain)
        point = random_point(model)
        m_ok, m_err = agree(derivation.mass_matrix, lm_mass, point)
        f_ok, f_err = agree(derivation.forcing, lm_forcing, point)
        row = {
            "n": n,
            "model": median(r[0] for r in sg),
            "derive": median(r[1] for r in sg),
            "el": median(r[2] for r in sg),
            "lm": median(r[0] for r in lm),
            "wall_ratio": median([r[0] for r in lm], "wall") / median([r[1] for r in sg], "wall"),
            "runs": f"{len(sg)}/{len(lm)}",
            "sg_ops": (op_count(derivation.mass_matrix), op_count(derivation.forcing)),
            "lm_ops": (op_count(lm_mass), op_count(lm_forcing)),
            "m_ok": m_ok, "m_err": m_err, "f_ok": f_ok, "f_err": f_err,
        }
        rows.append(row)
    lines = [
        "| n | symglep Model (s) | symglep derive (s) | symglep EL only (s) | LagrangesMethod (s) "
        "| runs sg/LM | LM / derive | LM / derive (wall) | LM / EL only | ops M sg / LM | ops f sg / LM "
        "| M agrees | f agrees |",
        "|---:|---:|---:|---:|---:|:---:|---:|---:|---:|---:|---:|:---:|:---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['n']} | {fmt_s(r['model'])} | {fmt_s(r['derive'])} | {fmt_s(r['el'])} "
            f"| {fmt_s(r['lm'])} | {r['runs']} | **{r['lm'] / r['derive']:.2f}×** | {r['wall_ratio']:.2f}× "
            f"| {r['lm'] / r['el']:.2f}× "
            f"| {r['sg_ops'][0]} / {r['lm_ops'][0]} | {r['sg_ops'][1]} / {r['lm_ops'][1]} "
            f"| {'yes' if r['m_ok'] else 'NO'} ({r['m_err']:.0e}) | {'yes' if r['f_ok'] else 'NO'} ({r['f_err']:.0e}) |"
        )
    return lines, rows


def stage_breakdown(model: symglep.Model) -> list[tuple[str, float]]:
    """CPU seconds of each step of ``derive`` (same calls, same order, one cold cache).

    The Euler–Lagrange step is split by re-running its formulas
    (``symglep.mechanics``) from a second cold cache.
    """
    import inspect

    from symglep import legendre, mechanics
    from symglep.derivation import legendre_regularity
    from symglep.learning import learning_rule, locality
    from symglep.symmetry import symmetries

    rows = []

    def stage(label, fn):
        cpu = time.process_time()
        result = fn()
        rows.append((label, time.process_time() - cpu))
        return result

    clear_cache()
    gc.collect()
    el = stage("euler_lagrange (M, f, residuals, accelerations)", lambda: euler_lagrange(model))
    stage("legendre_regularity (numeric det M at sample points)",
          lambda: legendre_regularity(model, el.mass_matrix))
    reuse = {}
    if "p_of_v" in inspect.signature(legendre.hamiltonian).parameters:
        reuse = {"p_of_v": el.momenta, "mass": el.mass_matrix}
    limit = getattr(legendre, "MAX_DENSE_INVERSE", "?")
    stage(f"legendre.hamiltonian (symbolic inverse only for n <= {limit})",
          lambda: legendre.hamiltonian(model.lagrangian, model.v, model.p, positive=model.parameters, **reuse))
    stage("symmetries (time reversal, separability)", lambda: symmetries(model, el.momenta))
    rule = stage("learning_rule (dL/dθ for every parameter)", lambda: learning_rule(model))
    stage("locality", lambda: locality(model, rule))
    rows.append(("  = sum of the derive steps", sum(r[1] for r in rows)))

    L, q, v, t, n = model.lagrangian, model.q, model.v, model.time, model.n
    clear_cache()
    gc.collect()
    p = stage("  EL split: p_i = dL/dv_i (n diffs of L)", lambda: [sp.diff(L, vi) for vi in v])

    def upper_triangle():
        out = sp.zeros(n, n)
        for i in range(n):
            for j in range(i, n):
                out[i, j] = out[j, i] = sp.diff(p[i], v[j])
        return out

    mass = stage("  EL split: M_ij = dp_i/dv_j, j >= i (n(n+1)/2 diffs)", upper_triangle)
    dldq = stage("  EL split: dL/dq_i (n diffs of L)", lambda: [sp.diff(L, qi) for qi in q])
    if hasattr(mechanics, "along_velocity"):
        conv = stage("  EL split: Σ_j dp_i/dq_j v_j via along_velocity (n directional diffs)",
                     lambda: [mechanics.along_velocity(p[i], q, v) for i in range(n)])
    else:
        conv = stage("  EL split: Σ_j dp_i/dq_j v_j (n² diffs)",
                     lambda: [sum((sp.diff(p[i], q[j]) * v[j] for j in range(n)), sp.S.Zero)
                              for i in range(n)])
    dpdt = stage("  EL split: dp_i/dt (n diffs)", lambda: [sp.diff(p[i], t) for i in range(n)])
    forcing = stage("  EL split: assemble f", lambda: sp.Matrix([dldq[i] - conv[i] - dpdt[i] for i in range(n)]))
    stage("  EL split: residuals M·a − f",
          lambda: [sum((mass[i, j] * model.a[j] for j in range(n)), sp.S.Zero) - forcing[i] for i in range(n)])
    stage("  EL split: explicit_accelerations", lambda: mechanics.explicit_accelerations(mass, forcing))
    return rows


def profile(n: int, energy: str, top: int, repeats: int) -> None:
    import cProfile
    import io
    import pstats

    model = build_model(n, energy)
    print(f"## symglep.derive, n={n}, {energy} energy\n")
    print(f"Stage breakdown (CPU s, no profiler; minimum over {repeats} runs):\n")
    runs = [stage_breakdown(model) for _ in range(repeats)]
    for i, (label, _) in enumerate(runs[0]):
        print(f"  {min(run[i][1] for run in runs):8.3f}  {label}")
    clear_cache()
    forget_derivations()
    gc.collect()
    profiler = cProfile.Profile()  # wall clock: a CPU-time timer costs a system call per event
    cpu = time.process_time()
    profiler.enable()
    symglep.derive(model)
    profiler.disable()
    print(f"\ncProfile of symglep.derive: {time.process_time() - cpu:.3f} CPU s under the profiler "
          "(profiler overhead included; the table below is in wall seconds)\n")
    for title, sort, restriction in (("symglep functions, by cumulative time", "cumulative", "symglep"),
                                     ("all functions, by internal time", "tottime", None)):
        buffer = io.StringIO()
        stats = pstats.Stats(profiler, stream=buffer)
        if restriction:
            stats.sort_stats(sort).print_stats(restriction, top)
        else:
            stats.strip_dirs().sort_stats(sort).print_stats(top)
        body = buffer.getvalue()
        body = body[body.find("   ncalls"):]
        print(f"### {title}\n\n{body}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--min-n", type=int, default=3)
    parser.add_argument("--max-n", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3, help="runs per timing (median); default 3")
    parser.add_argument("--slow", type=float, default=10.0,
                        help="a route whose first run exceeds this many CPU seconds is run once (default 10)")
    parser.add_argument("--energy", choices=(*ENERGIES, "both"), default="both")
    parser.add_argument("--write", metavar="PATH", help="also write the Markdown report to PATH")
    parser.add_argument("--profile", type=int, metavar="N",
                        help="instead of the benchmark, cProfile symglep.derive at n = N")
    parser.add_argument("--top", type=int, default=40, help="rows of the profile to print")
    args = parser.parse_args(argv)

    energies = ENERGIES if args.energy == "both" else (args.energy,)
    if args.profile is not None:
        for energy in energies:
            profile(args.profile, energy, args.top, args.repeats)
        return 0

    def log(message):
        print(message, file=sys.stderr, flush=True)

    python = os.path.relpath(sys.executable)
    python = "python" if python.startswith("..") else python
    command = python + " " + " ".join(shlex.quote(a) for a in [
        str(Path(sys.argv[0]).as_posix()) if argv is None else "benchmarks/derive_pendulum.py",
        *(sys.argv[1:] if argv is None else argv)])
    started = time.perf_counter()
    out = [
        "# Derivation benchmark: n-link pendulum, symglep vs LagrangesMethod",
        "",
        f"Command: `{command}`",
        "",
        "Generated by `benchmarks/derive_pendulum.py` (see its docstring for the exact system and timed work).",
        "",
        *machine_info(),
        "",
        "System: planar n-link pendulum in absolute angles, point mass m_i at the end of link i "
        "(length l_i), g = 9.81 constant, l_i and m_i learnable (positive). Both routes receive the "
        "same T and V (dynamicsymbols). Times are CPU seconds of the process (`time.process_time`), "
        "medians over the runs given in \"runs sg/LM\" "
        f"(--repeats {args.repeats}; a route whose first run took more than {args.slow:g} CPU s was run once), "
        "each run with a cleared sympy cache. \"LM / derive (wall)\" is the same ratio from wall-clock medians. "
        "The target of the issue is LM / derive ≥ 4 at n = 8.",
        "",
        "- **symglep derive**: `symglep.derive(model)` — Euler–Lagrange M and f, plus Legendre "
        "regularity (numeric det M), Hamiltonian attempt, symmetry verdicts, learning rule.",
        "- **symglep Model**: building `symglep.Model(...)` (rewriting to plain symbols), not included in derive.",
        "- **symglep EL only**: `symglep.mechanics.euler_lagrange(model)` — the M and f part of derive.",
        "- **LagrangesMethod**: `LagrangesMethod(L, q)`, `.form_lagranges_equations()`, `.mass_matrix`, `.forcing`.",
        "- **ops**: `count_ops` summed over the entries of M and of f (LagrangesMethod results rewritten "
        "in plain symbols first).",
        "- **M agrees / f agrees**: both routes' M (f) at one random numeric point, relative max "
        "difference in parentheses.",
    ]
    for energy in energies:
        lines, _ = benchmark(energy, range(args.min_n, args.max_n + 1), args.repeats, args.slow, log)
        title = {"cartesian": "T written from the Cartesian positions: Σ m_k (ẋ_k² + ẏ_k²)/2",
                 "compact": "T written in the reduced form: Σ μ_max(i,j) l_i l_j cos(th_i − th_j) ẇ_i ẇ_j / 2"}
        out += ["", f"## {energy} energy — {title[energy]}", "", *lines]
    out += ["", f"Total benchmark wall time: {time.perf_counter() - started:.0f} s.",
            "",
            "Where symglep.derive spends its time: `python benchmarks/derive_pendulum.py --profile 8` "
            "(stage breakdown and cProfile)."]
    text = "\n".join(out) + "\n"
    print(text, end="")
    if args.write:
        Path(args.write).parent.mkdir(parents=True, exist_ok=True)
        Path(args.write).write_text(text)
        log(f"wrote {args.write}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
