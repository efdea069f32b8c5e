"""The JAX target (docs/jax.md): memory and wall time of the echo VJP against JAX autodiff (BPTT) of the
same steps and against the Numba kernels' echo.

Memory: the scratch memory XLA allots to ``jit(grad(loss))`` w.r.t. θ (``memory_analysis()`` of the
compiled program: temporaries, without arguments and outputs), for K = 1000 … 8000.
Wall time: ``jit(vmap(grad(loss)))`` w.r.t. (θ, u, q0, p0) at B = 1 and 32, K = 1000, median of
five calls after a warm-up; the Numba echo is ``Kernels.gradient(..., learn_inputs=True)`` (its own
thread pool over the batch). The array model network_hru at n = 64 and 256 the same way with K = 200
(median of three), and its scratch memory at n = 64. float64, CPU.

    python benchmarks/jax_layer.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import sys
import time

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

import jax  # noqa: E402
import numpy as np  # noqa: E402

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_platforms", "cpu")

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import symglep  # noqa: E402
import symglep.jax as sj  # noqa: E402
from symglep.network.runtime import compile_array_model  # noqa: E402

DT = 0.05
MODELS = (("oscillator_chain", "leapfrog"), ("double_pendulum", "midpoint"))


def instance(mod, B, K, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.uniform(0.6, 1.4, mod.N_THETA), 0.3 * rng.normal(size=(B, K + 1, mod.N_U)),
            0.3 * rng.normal(size=(B, K + 1, mod.N_Y)), 0.3 * rng.normal(size=(B, mod.N)),
            0.3 * rng.normal(size=(B, mod.N)))


def scratch_mb(model, integrator, estimator, K):
    """XLA's temporary memory of jit(grad(loss)) w.r.t. θ for one sequence of K steps."""
    loss = sj.loss(model, DT, integrator=integrator, estimator=estimator)
    th, u, y, q0, p0 = instance(sj.module(model, integrator), 1, K)
    compiled = jax.jit(jax.grad(loss)).lower(th, u[0], y[0], q0[0], p0[0]).compile()
    return compiled.memory_analysis().temp_size_in_bytes / 1e6


def median_time(fn, repeats=5):
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def wall_times(model, integrator, B, K):
    """Seconds per batch gradient: (echo VJP, autodiff, Numba echo)."""
    mod = sj.module(model, integrator)
    th, u, y, q0, p0 = instance(mod, B, K)
    out = []
    for estimator in ("echo", "bptt"):
        grad = jax.jit(jax.vmap(jax.grad(sj.loss(model, DT, integrator=integrator, estimator=estimator),
                                         argnums=(0, 1, 3, 4)), in_axes=(None, 0, 0, 0, 0)))
        out.append(median_time(lambda: jax.block_until_ready(grad(th, u, y, q0, p0))))
    kernels = symglep.compile(model, dt=DT, integrator=integrator)
    out.append(median_time(lambda: kernels.gradient(th, q0, p0, u=u, y=y, learn_inputs=True)))
    return out


def array_instance(layer, B, K, seed=0):
    """network_hru's parameters (a dict; masses positive), inputs, targets and starts of a batch."""
    rng = np.random.default_rng(seed)
    mod = layer.module
    values = {name: rng.uniform(0.6, 1.4, shape) if name == "m" else rng.uniform(-0.3, 0.3, shape) / np.sqrt(mod.N)
              for name, shape in mod.parameter_shapes}
    return (values, 0.3 * rng.normal(size=(B, K + 1, mod.N_U)), 0.3 * rng.normal(size=(B, K + 1, mod.N_Y)),
            0.3 * rng.normal(size=(B, mod.N)), 0.3 * rng.normal(size=(B, mod.N)))


def array_scratch_mb(model, n, estimator, K):
    layer = sj.layer(model, DT, size=n)
    values, u, y, q0, p0 = array_instance(layer, 1, K)
    loss = sj.loss(model, DT, size=n, estimator=estimator)
    compiled = jax.jit(jax.grad(loss)).lower(layer.theta(values), u[0], y[0], q0[0], p0[0]).compile()
    return compiled.memory_analysis().temp_size_in_bytes / 1e6


def array_wall_times(model, n, B, K, repeats=3):
    """Seconds per batch gradient of an array model at n units: (echo VJP, autodiff, Numba echo)."""
    layer = sj.layer(model, DT, size=n)
    values, u, y, q0, p0 = array_instance(layer, B, K)
    th = layer.theta(values)
    out = []
    for estimator in ("echo", "bptt"):
        grad = jax.jit(jax.vmap(jax.grad(sj.loss(model, DT, size=n, estimator=estimator), argnums=(0, 1, 3, 4)),
                                in_axes=(None, 0, 0, 0, 0)))
        out.append(median_time(lambda: jax.block_until_ready(grad(th, u, y, q0, p0)), repeats))
    kernels = compile_array_model(model, DT)
    out.append(median_time(lambda: kernels.gradient(values, q0, p0, u, y, learn_inputs=True), repeats))
    return out


def array_tables(steps, sizes, batches):
    model = symglep.load_model(str(ROOT / "examples" / "network_hru.py"))
    print("\nnetwork_hru (array model, leapfrog) at n = 64: scratch memory of jit(grad(loss)) w.r.t. theta (MB):\n")
    print("| estimator | " + " | ".join(f"K = {k}" for k in steps) + " |")
    print("|---|" + "---|" * len(steps))
    for estimator in ("echo", "bptt"):
        row = [f"{array_scratch_mb(model, 64, estimator, k):.3f}" for k in steps]
        print(f"| {estimator} | " + " | ".join(row) + " |")
    print("\nnetwork_hru: wall time per batch gradient of (theta, u, q0, p0), K = 200 (ms, median of 3):\n")
    print("| n | B | echo VJP (JAX) | autodiff BPTT (JAX) | echo (Numba) | echo / autodiff |")
    print("|---|---|---|---|---|---|")
    for n in sizes:
        for B in batches:
            echo, bptt, numba = array_wall_times(model, n, B, 200)
            print(f"| {n} | {B} | {1e3 * echo:.2f} | {1e3 * bptt:.2f} | {1e3 * numba:.2f} | {echo / bptt:.2f} |",
                  flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description="JAX target: memory and wall time")
    parser.add_argument("--quick", action="store_true", help="K up to 2000, B = 1 only, n = 64 only")
    parser.add_argument("--arrays", action="store_true", help="only the array model's tables")
    args = parser.parse_args(argv)
    steps = (1000, 2000) if args.quick else (1000, 2000, 4000, 8000)
    print(f"jax {jax.__version__}, {os.cpu_count()} CPUs, float64\n")
    if args.arrays:
        array_tables(steps, (64,) if args.quick else (64, 256), (1,) if args.quick else (1, 32))
        return
    print("Scratch memory of jit(grad(loss)) w.r.t. theta (MB, XLA memory_analysis):\n")
    print("| model | integrator | estimator | " + " | ".join(f"K = {k}" for k in steps) + " |")
    print("|---|---|---|" + "---|" * len(steps))
    for name, integrator in MODELS:
        model = symglep.load_model(str(ROOT / "examples" / f"{name}.py"))
        for estimator in ("echo", "bptt"):
            row = [f"{scratch_mb(model, integrator, estimator, k):.3f}" for k in steps]
            print(f"| {name} | {integrator} | {estimator} | " + " | ".join(row) + " |")
    print("\nWall time per batch gradient of (theta, u, q0, p0), K = 1000 (ms, median of 5):\n")
    print("| model | B | echo VJP (JAX) | autodiff BPTT (JAX) | echo (Numba) | echo / autodiff |")
    print("|---|---|---|---|---|---|")
    for name, integrator in MODELS:
        model = symglep.load_model(str(ROOT / "examples" / f"{name}.py"))
        for B in ((1,) if args.quick else (1, 32)):
            echo, bptt, numba = wall_times(model, integrator, B, 1000)
            print(f"| {name} | {B} | {1e3 * echo:.2f} | {1e3 * bptt:.2f} | {1e3 * numba:.2f} | {echo / bptt:.2f} |")
    array_tables(steps, (64,) if args.quick else (64, 256), (1,) if args.quick else (1, 32))


if __name__ == "__main__":
    main()
