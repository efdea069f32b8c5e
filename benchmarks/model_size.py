"""Cost of the scalar method against model size: the measurement behind ``symglep.limits``.

Two families of networks written element by element:

* ``chain``: n Duffing oscillators with nearest-neighbour springs ``k_i (x_{i+1} − x_i)²/2``;
* ``dense``: n oscillators with all pair couplings ``k_ij cos(x_i − x_j)`` (n(n−1)/2 parameters).

For each, the table gives the size symglep's limit reads (``n × nodes(L)``,
``symglep.limits.model_size``), the CPU time of ``symglep.derive`` and of
``generate_source`` (derive + discretise + render), the generated source size,
and whether the default limit accepts it. Times are CPU seconds of this process
(``time.process_time``), median of ``--repeats`` runs (one run past 20 s).
With ``--compile N``, models with n <= N are also compiled once by Numba into a
fresh cache (``symglep.compile``, every kernel; wall seconds, one run).

    python benchmarks/model_size.py [--repeats 3] [--sizes chain:8,32,64,128 dense:8,16,32] [--compile 64]
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import tempfile
import time

import sympy as sp
from sympy.physics.mechanics import dynamicsymbols

import symglep
from symglep.derivation import forget_derivations
from symglep.limits import ENV_VAR, MAX_MODEL_SIZE, model_size
from symglep.codegen.numba_source import generate_source

try:
    from machine import cpu_name, git_state, load_average
except ImportError:  # run from elsewhere than benchmarks/
    sys.path.insert(0, __file__.rsplit("/", 1)[0])
    from machine import cpu_name, git_state, load_average


def network(kind: str, n: int) -> symglep.Model:
    xs = dynamicsymbols(f"x0:{n}")
    w = sp.Symbol("w", positive=True)
    potential = sum(w * x**2 / 2 + x**4 / 4 for x in xs)
    if kind == "chain":
        ks = sp.symbols(f"k0:{n - 1}", positive=True)
        potential += sum(k * (xs[i + 1] - xs[i]) ** 2 / 2 for i, k in enumerate(ks))
    else:
        ks = [sp.Symbol(f"k_{i}_{j}") for i in range(n) for j in range(i + 1, n)]
        pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
        potential += sum(k * sp.cos(xs[i] - xs[j]) for k, (i, j) in zip(ks, pairs))
    kinetic = sum(x.diff() ** 2 for x in xs) / 2
    return symglep.Model(lagrangian=kinetic - potential, coordinates=list(xs), parameters=list(ks),
                         constants={w: 1.0}, name=f"{kind}{n}")


def cpu_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        sp.core.cache.clear_cache()
        forget_derivations()
        gc.collect()
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
        if times[-1] > 20:
            break
    return statistics.median(times)


def compile_time(model: symglep.Model) -> float:
    """Wall seconds of ``symglep.compile`` (derive, generate, Numba-compile every kernel) into an empty cache."""
    with tempfile.TemporaryDirectory() as cache:
        start = time.perf_counter()
        symglep.compile(model, cache=cache, warm=True)
        return time.perf_counter() - start


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sizes", nargs="*", default=["chain:8,32,64,128", "dense:8,16,32"])
    parser.add_argument("--compile", type=int, default=0, help="also time Numba compilation for n <= N")
    args = parser.parse_args(argv)
    os.environ[ENV_VAR] = str(10**9)  # measure past the limit too
    print(f"# model size vs derive/generate time ({git_state()}; {cpu_name()}; load {load_average()})\n")
    print(f"limit: n × nodes(L) ≤ {MAX_MODEL_SIZE} (symglep.limits.MAX_MODEL_SIZE)\n")
    print("| model | n | parameters | n × nodes(L) | derive (s) | derive + generate (s) | source (kB) "
          "| compile (wall s) | accepted |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for spec in args.sizes:
        kind, sizes = spec.split(":")
        for n in map(int, sizes.split(",")):
            model = network(kind, n)
            size = model_size(model)
            t_derive = cpu_time(lambda: symglep.derive(model), args.repeats)
            source = []
            t_generate = cpu_time(lambda: source.append(generate_source(model)[0]), args.repeats)
            t_compile = compile_time(model) if n <= args.compile else None
            print(f"| {kind} | {n} | {len(model.parameters)} | {size} | {t_derive:.2f} | {t_generate:.1f} | "
                  f"{len(source[-1]) / 1e3:.0f} | {'—' if t_compile is None else f'{t_compile:.0f}'} | "
                  f"{'yes' if size <= MAX_MODEL_SIZE else 'no'} |", flush=True)


if __name__ == "__main__":
    main()
