"""Kernel benchmark: the n = 64 oscillator chain, generated Numba kernels vs hand-written code, echo vs BPTT.

The system is ``examples/oscillator_chain.py`` with N = ``--n`` units (64 by default),
built programmatically here:

    L = Σ ẋ_i²/2 − Σ (w x_i²/2 + a x_i⁴/4) − Σ k_i (x_{i+1} − x_i)²/2 + x_0 u,

learnable couplings k_0 … k_{n−2}, constants w = 1, a = 0.5, cost (x_{n−1} − y)²/2.
symglep picks Störmer–Verlet (leapfrog) for it (separable, explicit).

Three measurements, each for batch sizes ``--batches`` (1 and 32 by default):

(a) **free phase**: the generated ``free`` kernel (the module function, called with
    arrays already prepared, so that the comparison is kernel against kernel; the
    ``Kernels.free`` wrapper, which validates the arguments, is reported too) against
    :func:`hand_free`, a hand-written ``@njit(parallel=True)`` leapfrog of the same
    model written below: ``prange`` over the batch, kick–drift–kick with the force
    computed once per step (first-same-as-last), the same trapezoid loss. Both must
    give the same final state and loss (checked; the script stops if they do not).
    Both are also timed as *serial bodies* (their Python source compiled without
    ``parallel=True``, see :class:`Serial`), and :func:`breakdown` times the pieces
    of a generated step (skip with ``--no-breakdown``).
(b) **gradients**: ``gradient`` (echo, centred, β = 1e-4) against ``bptt_gradient``
    (discrete adjoint of the same integrator): the ``Kernels`` methods, the module
    kernels and their serial bodies; relative difference of their results.
(c) **peak memory against K** (``--memory-steps``) of ``gradient``, ``bptt_gradient``
    (and ``free`` for reference), each (method, B, K) in a fresh subprocess; see
    :func:`memory_child` for how it is measured and why that way.

Timings: one warm-up call first (compilation excluded), then the median of
``--repeats`` calls (≥ 5), the two sides of every ratio interleaved in the same
process. Kernels are cached on disk (``SYMGLEP_CACHE_DIR``, set to ``--cache`` for
the whole run, subprocesses included); the first run compiles the n = 64 kernels,
which takes a few minutes.

This is a measurement script, not a test: it never asserts a time.

Usage::

    python benchmarks/kernels_chain.py [--n 64] [--steps 2000] [--batches 1 32] [--repeats 7]
        [--memory-steps 500 2000 8000] [--cache /tmp/symglep-bench-cache]
        [--omp-wait-policy default|passive|active] [--no-breakdown] [--write docs/benchmarks-kernels.md]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

DEFAULT_CACHE = "/tmp/symglep-bench-cache"
W_VALUE, A_VALUE = 1.0, 0.5
DT = 0.02
SEED = 20240607


def _option(argv, name: str, default):
    """Value of ``--name VALUE`` / ``--name=VALUE`` in argv (read before argparse: it must act before imports)."""
    for i, a in enumerate(argv):
        if a == name and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith(name + "="):
            return a.split("=", 1)[1]
    return default


def _early_environment(argv) -> None:
    """Set what must be set before Numba and symglep are imported; subprocesses inherit it.

    ``SYMGLEP_CACHE_DIR`` from ``--cache``; ``OMP_WAIT_POLICY`` from ``--omp-wait-policy``
    (unless ``default``).
    """
    os.environ["SYMGLEP_CACHE_DIR"] = os.path.abspath(_option(argv, "--cache", DEFAULT_CACHE))
    policy = _option(argv, "--omp-wait-policy", "default")
    if policy != "default":
        os.environ["OMP_WAIT_POLICY"] = policy


_early_environment(sys.argv[1:])

import numpy as np  # noqa: E402
import numba  # noqa: E402
import sympy as sp  # noqa: E402
from numba import njit, prange  # noqa: E402

from machine import cpu_name, git_state, load_average  # noqa: E402
from sympy.physics.mechanics import dynamicsymbols  # noqa: E402

import symglep  # noqa: E402


# -- the system -----------------------------------------------------------------
def build_model(n: int) -> symglep.Model:
    """The oscillator chain of ``examples/oscillator_chain.py`` with ``n`` units."""
    xs = dynamicsymbols(f"x0:{n}")
    ks = sp.symbols(f"k0:{n - 1}", positive=True)
    u, y = dynamicsymbols("u y")
    w, a = sp.symbols("w a", positive=True)
    kinetic = sum(xi.diff() ** 2 for xi in xs) / 2
    onsite = sum(w * xi**2 / 2 + a * xi**4 / 4 for xi in xs)
    coupling = sum(k * (xs[i + 1] - xs[i]) ** 2 / 2 for i, k in enumerate(ks))
    return symglep.Model(
        lagrangian=kinetic - onsite - coupling + xs[0] * u,
        coordinates=list(xs),
        parameters=list(ks),
        constants={w: W_VALUE, a: A_VALUE},
        inputs=[u],
        targets=[y],
        cost=(xs[-1] - y) ** 2 / 2,
        name=f"oscillator_chain{n}",
    )


def problem(n: int, batch: int, steps: int, seed: int = SEED):
    """``(theta, q0, p0, u, y)``: couplings in [0.5, 1.5], small random start, a sine drive, a sine target."""
    rng = np.random.default_rng(seed)
    theta = rng.uniform(0.5, 1.5, n - 1)
    q0 = rng.normal(0.0, 0.1, (batch, n))
    p0 = rng.normal(0.0, 0.1, (batch, n))
    t = DT * np.arange(steps + 1)
    phase = rng.uniform(0.0, 2 * np.pi, (batch, 1))
    u = (0.5 * np.sin(1.3 * t[None, :] + phase))[:, :, None]
    y = (0.2 * np.sin(0.7 * t[None, :] - phase))[:, :, None]
    return theta, q0, p0, np.ascontiguousarray(u), np.ascontiguousarray(y)


# -- the hand-written reference -------------------------------------------------
@njit(inline="always")
def _hand_force(q, k, w, a, u0, f):
    """f = ∂V/∂q with V = Σ (w x²/2 + a x⁴/4) + Σ k_i (x_{i+1} − x_i)²/2 − x_0 u."""
    n = q.shape[0]
    left = 0.0  # k_{i−1} (x_i − x_{i−1}), zero at the free end
    for i in range(n - 1):
        x = q[i]
        right = k[i] * (q[i + 1] - x)
        f[i] = w * x + a * x * x * x + left - right
        left = right
    x = q[n - 1]
    f[n - 1] = w * x + a * x * x * x + left
    f[0] -= u0


@njit(parallel=True)
def hand_free(k, w, a, q0, p0, u, y, h):
    """Störmer–Verlet (kick–drift–kick, one force evaluation per step) and the trapezoid loss."""
    B, n = q0.shape
    K = u.shape[1] - 1
    qT = np.empty((B, n))
    pT = np.empty((B, n))
    loss = np.zeros(B)
    for b in prange(B):
        q = q0[b].copy()
        p = p0[b].copy()
        f = np.empty(n)
        _hand_force(q, k, w, a, u[b, 0, 0], f)
        c = q[n - 1] - y[b, 0, 0]
        acc = 0.25 * h * c * c
        for j in range(1, K + 1):
            for i in range(n):
                p[i] -= 0.5 * h * f[i]
                q[i] += h * p[i]
            _hand_force(q, k, w, a, u[b, j, 0], f)
            for i in range(n):
                p[i] -= 0.5 * h * f[i]
            c = q[n - 1] - y[b, j, 0]
            acc += (0.25 if j == K else 0.5) * h * c * c
        loss[b] = acc
        qT[b] = q
        pT[b] = p
    return qT, pT, loss


# -- timing -----------------------------------------------------------------------
def interleaved(fns: dict, repeats: int) -> dict:
    """Median wall seconds of each function after one warm-up call, runs interleaved.

    The garbage collector is run once before and disabled during the runs: a
    ``gc.collect()`` right before a call evicts the caches and adds tens of µs to it.
    """
    for fn in fns.values():
        fn()
    times = {name: [] for name in fns}
    gc.collect()
    gc.disable()
    try:
        for _ in range(repeats):
            for name, fn in fns.items():
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
    finally:
        gc.enable()
    return {name: statistics.median(ts) for name, ts in times.items()}


def rel(a, b) -> float:
    """max |a − b| / max |b| (0 when both vanish)."""
    a, b = np.asarray(a), np.asarray(b)
    scale = float(np.max(np.abs(b))) if b.size else 0.0
    diff = float(np.max(np.abs(a - b))) if b.size else 0.0
    return diff / scale if scale else diff


class Serial:
    """The same Python functions compiled with ``@njit`` but without ``parallel=True``.

    The generated public kernels only wrap ``_pass``/``_adjoint`` (already compiled
    and cached) in a ``prange`` loop; compiling their Python source without
    ``parallel`` (``prange`` becomes ``range``) times the per-sequence work
    without the threading layer's launch and barrier, which on a small or busy
    machine can dominate a call.
    """

    def __init__(self, module):
        self.free = njit(module.free.py_func)
        self.gradient = njit(module.gradient.py_func)
        self.bptt_gradient = njit(module.bptt_gradient.py_func)
        self.hand_free = njit(hand_free.py_func)


def free_vs_hand(kernels, serial: Serial, n: int, steps: int, batch: int, repeats: int) -> dict:
    theta, q0, p0, u, y = problem(n, batch, steps)
    module = kernels.module
    h = DT
    fns = {
        "generated": lambda: module.free(theta, q0, p0, False, u, y, h, 0.0, False),
        "hand": lambda: hand_free(theta, W_VALUE, A_VALUE, q0, p0, u, y, h),
        "generated_serial": lambda: serial.free(theta, q0, p0, False, u, y, h, 0.0, False),
        "hand_serial": lambda: serial.hand_free(theta, W_VALUE, A_VALUE, q0, p0, u, y, h),
        "api": lambda: kernels.free(theta, q0, p0=p0, u=u, y=y, dt=h),
    }
    g, hw = fns["generated"](), fns["hand"]()
    err_q, err_p, err_l = rel(g[0], hw[0]), rel(g[1], hw[1]), rel(g[2], hw[2])
    if not (np.allclose(g[0], hw[0], rtol=1e-9, atol=1e-12) and np.allclose(g[1], hw[1], rtol=1e-9, atol=1e-12)
            and np.allclose(g[2], hw[2], rtol=1e-9, atol=1e-15)):
        raise SystemExit(f"generated and hand-written free phase disagree (B={batch}): "
                         f"q {err_q:.1e}, p {err_p:.1e}, loss {err_l:.1e}")
    gs = fns["generated_serial"]()
    if not (np.array_equal(gs[0], g[0]) and np.array_equal(gs[2], g[2])):
        raise SystemExit(f"serial and parallel generated free phase disagree (B={batch})")
    t = interleaved(fns, repeats)
    return {"B": batch, **t, "err_q": err_q, "err_p": err_p, "err_l": err_l, "loss": float(g[2].sum())}


def echo_vs_bptt(kernels, serial: Serial, n: int, steps: int, batch: int, repeats: int) -> dict:
    theta, q0, p0, u, y = problem(n, batch, steps)
    module = kernels.module
    h, beta = DT, 1e-4
    fns = {
        "echo": lambda: kernels.gradient(theta, q0, p0=p0, u=u, y=y, dt=h, beta=beta),
        "bptt": lambda: kernels.bptt_gradient(theta, q0, p0=p0, u=u, y=y, dt=h),
        "echo_kernel": lambda: module.gradient(theta, q0, p0, False, u, y, h, 0.0, beta, 2, False, theta, False),
        "bptt_kernel": lambda: module.bptt_gradient(theta, q0, p0, False, u, y, h, 0.0),
        "echo_serial": lambda: serial.gradient(theta, q0, p0, False, u, y, h, 0.0, beta, 2, False, theta, False),
        "bptt_serial": lambda: serial.bptt_gradient(theta, q0, p0, False, u, y, h, 0.0),
        "free_serial": lambda: serial.free(theta, q0, p0, False, u, y, h, 0.0, False),
    }
    e, b = fns["echo"](), fns["bptt"]()
    t = interleaved(fns, repeats)
    return {"B": batch, **t, "err_th": rel(e.dtheta, b.dtheta), "err_q0": rel(e.dq0, b.dq0),
            "err_p0": rel(e.dx0, b.dx0), "err_loss": rel(e.loss, b.loss)}


# -- where the free phase's time goes (per step, one sequence) -----------------------
def breakdown(kernels, n: int, steps: int, repeats: int) -> list[str]:
    """Per-step cost of the pieces of the generated leapfrog step, each timed in a K-step @njit loop.

    Also counts the instructions of the generated force (its Python source compiled
    afresh, since cached code cannot be disassembled) and of the hand-written one.
    """
    import collections
    import re

    m = kernels.module
    f_force, f_velocity, f_cost, node = m.f_force, m.f_velocity, m.f_cost, m._node
    n_theta = n - 1

    @njit
    def loop_empty(th, q, u, y, K, reps):
        s = 0.0
        for r in range(reps):
            for k in range(K):
                s += q[k % q.shape[0]]
        return s

    @njit
    def loop_force(th, q, u, y, K, reps):
        fa = np.empty(q.shape[0])
        for r in range(reps):
            for k in range(K):
                f_force(q, 0.0, u[k], y[k], th, 0.0, fa)
                q[0] += 1e-12 * fa[0]
        return fa[0]

    @njit
    def loop_hand_force(th, q, u, y, K, reps):
        fa = np.empty(q.shape[0])
        for r in range(reps):
            for k in range(K):
                _hand_force(q, th, W_VALUE, A_VALUE, u[k, 0], fa)
                q[0] += 1e-12 * fa[0]
        return fa[0]

    @njit
    def loop_velocity(th, q, u, y, K, reps):
        v = np.empty(q.shape[0])
        for r in range(reps):
            for k in range(K):
                f_velocity(q, 0.0, th, v)
                q[0] += 1e-12 * v[0]
        return v[0]

    import inspect

    if "c" in inspect.signature(node.py_func).parameters:  # work buffers passed in (no allocation per step)
        @njit
        def loop_node(th, q, u, y, K, reps):
            off = K < 0
            G = np.zeros((1, n_theta))
            Gu = np.zeros((1, 1, 1))
            Cu = np.zeros((1, 1))
            loss = np.zeros(1)
            c = np.empty(1)
            ndth = np.empty(n_theta)
            ndu = np.empty(1)
            ndq = np.empty(q.shape[0])
            for r in range(reps):
                for k in range(K):
                    node(q, k, K, DT, 0.0, u, y, th, off, off, G[0], Gu[0], Cu, loss, 0, c, ndth, ndu, ndq)
            return loss[0]
    else:  # the first template: _node allocated its output
        @njit
        def loop_node(th, q, u, y, K, reps):
            off = K < 0
            G = np.zeros((1, n_theta))
            Gu = np.zeros((1, 1, 1))
            Cu = np.zeros((1, 1))
            loss = np.zeros(1)
            for r in range(reps):
                for k in range(K):
                    node(q, k, K, DT, 0.0, u, y, th, off, off, G[0], Gu[0], Cu, loss[0:1])
            return loss[0]

    @njit
    def loop_cost(th, q, u, y, K, reps):
        c = np.empty(1)
        s = 0.0
        for r in range(reps):
            for k in range(K):
                f_cost(q, 0.0, u[k], y[k], c)
                s += c[0]
        return s

    @njit
    def loop_alloc(th, q, u, y, K, reps):
        s = 0.0
        for r in range(reps):
            for k in range(K):
                c = np.empty(1)
                c[0] = k
                s += c[0]
        return s

    theta, q0, p0, u, y = problem(n, 1, steps)
    serial = njit(m.free.py_func)
    hand = njit(hand_free.py_func)
    q = q0[0].copy()
    u0, y0 = u[0], y[0]
    reps = max(1, 200_000 // steps)  # ~2e5 steps per timed call: the call's own overhead vanishes

    def many(fn):
        def run():
            for _ in range(reps):
                fn()
        return run

    pieces = {
        "whole step, generated `free` (serial body)":
            many(lambda: serial(theta, q0, p0, False, u, y, DT, 0.0, False)),
        "whole step, hand-written (serial body)": many(lambda: hand(theta, W_VALUE, A_VALUE, q0, p0, u, y, DT)),
        "empty loop (reference)": lambda: loop_empty(theta, q, u0, y0, steps, reps),
        "`f_force` (generated, one call)": lambda: loop_force(theta, q, u0, y0, steps, reps),
        "hand-written force (same maths, a loop over i)": lambda: loop_hand_force(theta, q, u0, y0, steps, reps),
        "`_node` with learn = cost_u = False (loss at one node)": lambda: loop_node(theta, q, u0, y0, steps, reps),
        "`f_cost` alone, preallocated output": lambda: loop_cost(theta, q, u0, y0, steps, reps),
        "reference: one `np.empty(1)` (NRT alloc + free)": lambda: loop_alloc(theta, q, u0, y0, steps, reps),
        "`f_velocity` (v = p here: a copy)": lambda: loop_velocity(theta, q, u0, y0, steps, reps),
    }
    skipped = []
    for name, fn in list(pieces.items()):
        try:  # the loops call the generated module's internals, whose signatures may change
            fn()
        except Exception as exc:  # noqa: BLE001 - report and go on
            skipped.append(f"{name} ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})")
            del pieces[name]
    t = interleaved(pieces, repeats)
    lines = [
        "| piece (one sequence) | ns per step |",
        "|:---|---:|",
    ]
    lines += [f"| {name} | {sec * 1e9 / (steps * reps):.1f} |" for name, sec in t.items()]
    if skipped:
        lines += ["", "Not timed (the generated internals no longer match this script): " + "; ".join(skipped)]

    source = Path(m.__file__).read_text()
    body = re.search(r"^def f_force\(.*?(?=^@njit)", source, re.S | re.M).group(0)
    namespace = {"np": np, "math": __import__("math")}
    exec(body, namespace)  # noqa: S102 - the generated module's own source
    fresh = njit(namespace["f_force"])
    fresh(q, 0.0, u[0, 0], y[0, 0], theta, 0.0, np.empty(n))
    plain_hand = njit(_hand_force.py_func)
    plain_hand(q, theta, W_VALUE, A_VALUE, 0.0, np.empty(n))

    def census(dispatcher):
        asm = dispatcher.inspect_asm(dispatcher.signatures[0])
        ops = collections.Counter(line.split()[0] for line in asm.splitlines()
                                  if line.startswith("\t") and not line.strip().startswith("."))
        scalar = sum(c for op, c in ops.items() if re.fullmatch(r"v?(add|sub|mul|fmadd\w*|fmsub\w*|fnmadd\w*)sd", op))
        packed = sum(c for op, c in ops.items() if re.fullmatch(r"v?(add|sub|mul|fmadd\w*|fmsub\w*|fnmadd\w*)pd", op))
        moves = sum(c for op, c in ops.items() if op in ("vmovsd", "movsd", "vmovupd", "vmovapd", "vmovups", "vmovaps"))
        return sum(ops.values()), scalar, packed, moves

    lines += [
        "",
        "| force routine | instructions | scalar FP arith (…sd) | packed FP arith (…pd) | FP moves |",
        "|:---|---:|---:|---:|---:|",
    ]
    for name, disp in (("generated `f_force` (its source, compiled afresh)", fresh),
                       ("hand-written force (not inlined)", plain_hand)):
        total, scalar, packed, moves = census(disp)
        lines.append(f"| {name} | {total} | {scalar} | {packed} | {moves} |")
    return lines


# -- memory (one subprocess per measurement) ---------------------------------------
def _rss_kib() -> tuple[int, int]:
    """``(VmRSS, VmHWM)`` of this process in KiB (Linux)."""
    rss = hwm = -1
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
    return rss, hwm


def _reset_peak() -> bool:
    """Reset the address space's peak RSS (VmHWM) to the current RSS: Linux ``clear_refs`` 5."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def memory_child(method: str, n: int, batch: int, steps: int) -> None:
    """Print (JSON) the peak-RSS growth of one kernel call in this fresh process.

    Load the cached kernels, warm up with the same method and batch at K = 4
    (loads the compiled code, starts Numba's threads), build the inputs of the
    measured call, collect garbage, reset the peak RSS to the current RSS
    (``/proc/self/clear_refs`` 5, which resets VmHWM, the address space's peak;
    without it the baseline is the peak so far, which includes the import and
    loading transients and hides growths of a few MiB), read the current RSS, make
    the call and read the peak. Reported: ``VmHWM(after) − VmRSS(before)`` from
    ``/proc/self/status`` (the kernel's RSS counters are per-CPU and read
    approximately: ± ~0.25 MiB) and ``ru_maxrss(after) − ru_maxrss(before)`` from
    ``getrusage``. The latter is the same high-water mark but also keeps the one
    carried over from before ``exec`` (the forked copy of the parent, which has
    compiled the kernels and is bigger than the child) and the one recorded when a
    thread exits; ``clear_refs`` resets neither, so started from this script
    it stays flat, while started from a small shell it agrees with VmHWM. Numba's NRT allocation
    counts of the call come too (``NUMBA_NRT_STATS=1``; counts only, NRT keeps no
    byte totals). The parent runs this with ``MALLOC_MMAP_THRESHOLD_=65536`` so that
    glibc serves every block ≥ 64 KiB with fresh pages (otherwise a trajectory can
    land in heap memory freed earlier and already resident, and RSS misses it).
    """
    from numba.core.runtime import rtsys

    kernels = symglep.compile(build_model(n), dt=DT)
    fn = {"echo": kernels.gradient, "bptt": kernels.bptt_gradient, "free": kernels.free}[method]
    theta, q0, p0, u, y = problem(n, batch, 4)
    fn(theta, q0, p0=p0, u=u, y=y)
    theta, q0, p0, u, y = problem(n, batch, steps)
    gc.collect()
    reset = _reset_peak()
    maxrss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rss0, _ = _rss_kib()
    try:
        before = rtsys.get_allocation_stats()
    except RuntimeError:
        before = None
    out = fn(theta, q0, p0=p0, u=u, y=y)
    maxrss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    after = rtsys.get_allocation_stats() if before is not None else None
    _, hwm = _rss_kib()
    del out
    print(json.dumps({
        "method": method, "B": batch, "K": steps, "reset": reset,
        "rss0_kib": rss0, "hwm_kib": hwm, "delta_kib": hwm - rss0,
        "maxrss0_kib": maxrss0, "maxrss1_kib": maxrss1, "maxrss_delta_kib": maxrss1 - maxrss0,
        "nrt_allocs": None if after is None else after.alloc - before.alloc,
        "threads": numba.get_num_threads(),
    }))


def memory_table(n: int, batches, steps_list, log) -> tuple[list[str], list[dict]]:
    rows = []
    env = dict(os.environ, NUMBA_NRT_STATS="1", MALLOC_MMAP_THRESHOLD_="65536")
    for batch in batches:
        for method in ("echo", "bptt", "free"):
            for steps in steps_list:
                cmd = [sys.executable, str(Path(__file__).resolve()), "--memory-child", method, str(batch),
                       str(steps), "--n", str(n)]  # the environment carries the cache and OpenMP settings
                start = time.perf_counter()
                done = subprocess.run(cmd, capture_output=True, text=True, env=env)
                if done.returncode != 0:
                    raise SystemExit(f"memory subprocess failed: {' '.join(cmd)}\n{done.stderr}")
                row = json.loads(done.stdout.strip().splitlines()[-1])
                log(f"memory {method} B={batch} K={steps}: +{row['delta_kib']} KiB "
                    f"({time.perf_counter() - start:.1f} s)")
                rows.append(row)
    lines = [
        "| B | method | K | Δ peak RSS (MiB) | Δ ru_maxrss (MiB, see above) | expected (MiB) | measured / expected "
        "| NRT allocations in the call |",
        "|---:|:---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        mib = r["delta_kib"] / 1024
        if r["method"] == "bptt":
            live = min(r["B"], r["threads"])
            expected = (live * 2 * (r["K"] + 1) * n + r["B"] * (r["K"] + 1)) * 8 / 2**20
            exp_s, ratio = f"{expected:.2f}", f"{mib / expected:.2f}"
        else:
            exp_s, ratio = "≈ 0", "—"
        lines.append(f"| {r['B']} | {r['method']} | {r['K']} | {mib:.2f} | {r['maxrss_delta_kib'] / 1024:.2f} "
                     f"| {exp_s} | {ratio} | {r['nrt_allocs']} |")
    return lines, rows


# -- report ---------------------------------------------------------------------------
def machine_info(load_at_start: str) -> list[str]:
    try:
        layer = numba.threading_layer()
    except ValueError:
        layer = "not initialised"
    omp = {k: os.environ[k] for k in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "NUMBA_NUM_THREADS") if k in os.environ}
    return [
        f"- platform: {platform.platform()}",
        f"- CPU: {cpu_name()}, {os.cpu_count()} logical CPUs (load average at start: {load_at_start}; "
        f"at the end: {load_average()})",
        f"- python: {platform.python_version()} ({platform.python_implementation()})",
        f"- numba: {numba.__version__} (threading layer {layer}, {numba.get_num_threads()} threads"
        f"{', ' + ', '.join(f'{k}={v}' for k, v in omp.items()) if omp else ''}), numpy: {np.__version__}, "
        f"sympy: {sp.__version__}",
        f"- symglep: {symglep.__version__}, git {git_state(('symglep', 'templates'))}",
    ]


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.2f}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=64, help="units in the chain (default 64)")
    parser.add_argument("--steps", type=int, default=2000, help="K for the timings (default 2000)")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--repeats", type=int, default=7, help="timed runs per kernel (median; default 7)")
    parser.add_argument("--memory-steps", type=int, nargs="*", default=[500, 2000, 8000],
                        help="K of the memory table (none: skip it)")
    parser.add_argument("--cache", default=DEFAULT_CACHE,
                        help=f"SYMGLEP_CACHE_DIR for the whole run (default {DEFAULT_CACHE})")
    parser.add_argument("--omp-wait-policy", choices=("default", "passive", "active"), default="default",
                        help="set OMP_WAIT_POLICY for Numba's OpenMP threading layer (default: leave it)")
    parser.add_argument("--no-breakdown", action="store_true", help="skip the per-step breakdown table")
    parser.add_argument("--write", metavar="PATH", help="also write the Markdown report to PATH")
    parser.add_argument("--memory-child", nargs=3, metavar=("METHOD", "B", "K"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.memory_child:
        method, batch, steps = args.memory_child
        memory_child(method, args.n, int(batch), int(steps))
        return 0
    if args.repeats < 5:
        parser.error("--repeats must be at least 5")

    def log(message):
        print(message, file=sys.stderr, flush=True)

    command = "python " + " ".join(shlex.quote(a) for a in [
        str(Path(sys.argv[0]).as_posix()) if argv is None else "benchmarks/kernels_chain.py",
        *(sys.argv[1:] if argv is None else argv)])
    started = time.perf_counter()
    load_at_start = load_average()
    n, steps = args.n, args.steps
    log(f"SYMGLEP_CACHE_DIR={os.environ['SYMGLEP_CACHE_DIR']}; compiling/loading the n={n} kernels ...")
    t0 = time.perf_counter()
    kernels = symglep.compile(build_model(n), dt=DT)
    for fn in (kernels.free, kernels.gradient, kernels.bptt_gradient):  # load or compile every entry point
        theta, q0, p0, u, y = problem(n, 1, 4)
        fn(theta, q0, p0=p0, u=u, y=y)
    serial = Serial(kernels.module)
    theta, q0, p0, u, y = problem(n, 1, 4)
    serial.free(theta, q0, p0, False, u, y, DT, 0.0, False)
    serial.gradient(theta, q0, p0, False, u, y, DT, 0.0, 1e-4, 2, False, theta, False)
    serial.bptt_gradient(theta, q0, p0, False, u, y, DT, 0.0)
    hand_free(theta, W_VALUE, A_VALUE, q0, p0, u, y, DT)
    serial.hand_free(theta, W_VALUE, A_VALUE, q0, p0, u, y, DT)
    load_s = time.perf_counter() - t0
    log(f"kernels ready in {load_s:.1f} s (integrator {kernels.integrator})")

    free_rows, grad_rows = [], []
    for batch in args.batches:
        log(f"free phase B={batch} ...")
        free_rows.append(free_vs_hand(kernels, serial, n, steps, batch, args.repeats))
        log(f"gradients B={batch} ...")
        grad_rows.append(echo_vs_bptt(kernels, serial, n, steps, batch, args.repeats))
    parts = None
    if not args.no_breakdown:
        log("per-step breakdown ...")
        parts = breakdown(kernels, n, steps, args.repeats)

    out = [
        "# Kernel benchmark: oscillator chain, generated vs hand-written, echo vs BPTT",
        "",
        f"Command: `{command}`",
        "",
        "Generated by `benchmarks/kernels_chain.py` (see its docstring for the exact system and timed work).",
        "",
        *machine_info(load_at_start),
        "",
        f"System: the oscillator chain of `examples/oscillator_chain.py` with n = {n} units, "
        f"L = Σ ẋ_i²/2 − Σ (w x_i²/2 + a x_i⁴/4) − Σ k_i (x_{{i+1}} − x_i)²/2 + x_0 u, "
        f"{n - 1} learnable k_i ∈ [0.5, 1.5], w = {W_VALUE:g}, a = {A_VALUE:g}, cost (x_{n - 1} − y)²/2; "
        f"integrator {kernels.integrator}, dt = {DT:g}, K = {steps} steps, sine input and target, "
        f"small random initial state. Kernels loaded from the cache (or compiled) in {load_s:.0f} s "
        "before any timing.",
        "",
        "## How measured",
        "",
        f"Every time is the median of {args.repeats} calls after one warm-up call (compilation excluded), "
        "wall clock (`time.perf_counter`); the calls of one table row are interleaved in the same process, "
        "so every ratio comes from one run. **Generated** is the generated module's `free` (or `gradient`, "
        "`bptt_gradient`) called with ready arrays, kernel against kernel; the `Kernels` methods (argument "
        "checks, and for `gradient` the reversibility check) are shown for reference. **Hand-written** is "
        "`hand_free` in the script: `@njit(parallel=True)`, `prange` over the batch, kick–drift–kick with one "
        "force evaluation per step (first-same-as-last), the same trapezoid loss; both must give the same "
        "final q, p and loss (relative difference shown; the script stops otherwise). **Serial body** is the "
        "same Python function of either side compiled with `@njit` without `parallel=True` (the generated "
        "`free`'s inner `_pass`, `_node`, `f_force` … are the very same compiled functions): the work per "
        "sequence without the threading layer's launch and barrier, which on a small, busy machine (see the "
        "load average) can cost more than the work itself. Gradients: echo = `gradient` (centred, β = 1e-4), "
        "BPTT = `bptt_gradient`; their difference is max|echo − BPTT| / max|BPTT| per output.",
        *([] if args.omp_wait_policy == "default" else [
            "",
            f"`OMP_WAIT_POLICY={args.omp_wait_policy}` was set for this run (`--omp-wait-policy`). With GNU "
            "OpenMP's default (threads spin before they sleep) and other processes competing for the few "
            "CPUs, each parallel call of either side took tens of ms whatever its work while this script "
            "was written, and the parallel columns measured the scheduler rather than the kernels.",
        ]),
        "",
        "Peak memory: each (B, method, K) runs in a fresh subprocess (`--memory-child`) that loads the cached "
        "kernels, warms up the same method at K = 4 (code loaded, threads started), builds the inputs, resets "
        "the process's peak RSS to its current RSS (Linux `/proc/self/clear_refs` 5, which resets VmHWM, the "
        "address space's peak), makes the call and reports the peak minus the RSS just before: the most memory the "
        "call held at once, as resident pages, whoever allocated it. `tracemalloc` cannot see Numba's (NRT) "
        "allocations, and NRT's statistics (`NUMBA_NRT_STATS=1`, shown) count allocations but not bytes, "
        "so RSS it is. Without the reset the baseline would be the import/compile peak, which hides growths "
        "of a few MiB. The main column is VmHWM − VmRSS from `/proc/self/status` (the kernel's per-CPU RSS "
        "counters are read approximately: ± ~0.25 MiB). `getrusage(RUSAGE_SELF).ru_maxrss` is shown too but "
        "is not usable here: besides the address space's high-water mark it keeps the one inherited across "
        "`exec` (the forked copy of this script's process, which has compiled the kernels and is bigger "
        "than the child) and those recorded at thread exits, which `clear_refs` does not reset, so in these "
        "children it never moves (run by hand from a shell, the child's ru_maxrss agrees with VmHWM). "
        "The subprocesses run with "
        "`MALLOC_MMAP_THRESHOLD_=65536` so that glibc serves every block ≥ 64 KiB with fresh pages "
        "(otherwise a trajectory can reuse heap pages freed earlier, already resident, and RSS misses it).",
        "",
        f"## (a) Free phase, K = {steps}: generated `free` vs hand-written Numba leapfrog",
        "",
        "| B | generated (ms) | hand-written (ms) | **generated / hand** | serial body: generated (ms) "
        "| serial body: hand (ms) | **serial generated / hand** | ns per step and sequence, serial (gen / hand) "
        "| Kernels.free (ms) | rel. diff qT | rel. diff pT | rel. diff loss |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in free_rows:
        per = lambda s: s * 1e9 / (steps * r["B"])  # noqa: E731
        out.append(
            f"| {r['B']} | {ms(r['generated'])} | {ms(r['hand'])} | **{r['generated'] / r['hand']:.2f}×** "
            f"| {ms(r['generated_serial'])} | {ms(r['hand_serial'])} "
            f"| **{r['generated_serial'] / r['hand_serial']:.2f}×** "
            f"| {per(r['generated_serial']):.0f} / {per(r['hand_serial']):.0f} | {ms(r['api'])} "
            f"| {r['err_q']:.1e} | {r['err_p']:.1e} | {r['err_l']:.1e} |")
    met = all(r["generated"] / r["hand"] <= 1.2 for r in free_rows)
    met_serial = all(r["generated_serial"] / r["hand_serial"] <= 1.2 for r in free_rows)
    out += ["", f"Target generated / hand-written ≤ 1.2: **{'met' if met else 'not met'}** as shipped "
            f"(parallel), **{'met' if met_serial else 'not met'}** for the serial bodies.", ""]
    if parts:
        out += [
            f"### Where a generated step goes (one sequence, serial, K = {steps} steps repeated to "
            f"~2·10⁵ per timed call, median of {args.repeats})",
            "",
            "Each piece is timed in an `@njit` loop of K calls that uses the generated module's own compiled "
            "functions; the rows do not add up exactly (loop overheads, overlap).",
            "",
            *parts,
            "",
        ]
    out += [
        f"## (b) Gradients, K = {steps}: echo (`gradient`, centred) vs BPTT (`bptt_gradient`)",
        "",
        "| B | Kernels.gradient (ms) | Kernels.bptt_gradient (ms) | echo kernel (ms) | BPTT kernel (ms) "
        "| **echo / BPTT (kernels)** | serial body: echo / BPTT / free (ms) | serial echo / BPTT "
        "| rel. diff dθ | rel. diff dq0 | rel. diff dp0 | rel. diff loss |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in grad_rows:
        out.append(
            f"| {r['B']} | {ms(r['echo'])} | {ms(r['bptt'])} | {ms(r['echo_kernel'])} | {ms(r['bptt_kernel'])} "
            f"| **{r['echo_kernel'] / r['bptt_kernel']:.2f}×** "
            f"| {ms(r['echo_serial'])} / {ms(r['bptt_serial'])} / {ms(r['free_serial'])} "
            f"| {r['echo_serial'] / r['bptt_serial']:.2f}× "
            f"| {r['err_th']:.1e} | {r['err_q0']:.1e} | {r['err_p0']:.1e} | {r['err_loss']:.1e} |")
    if args.memory_steps:
        lines, _ = memory_table(n, args.batches, args.memory_steps, log)
        out += [
            "",
            "## (c) Peak memory of one call vs K (fresh subprocess each)",
            "",
            "Expected for BPTT: the stored trajectory (q and p), 2·(K+1)·n·8 bytes per sequence, held at "
            "once by as many sequences as Numba runs in parallel (min(B, threads): each `prange` iteration "
            "allocates its trajectory and frees it at the end), plus the returned du, B·(K+1)·8 bytes; "
            "the echo and the free phase hold O(n) per sequence, whatever K.",
            "",
            *lines,
        ]
    out += ["", f"Total benchmark wall time: {time.perf_counter() - started:.0f} s."]
    text = "\n".join(out) + "\n"
    print(text, end="")
    if args.write:
        Path(args.write).parent.mkdir(parents=True, exist_ok=True)
        Path(args.write).write_text(text)
        log(f"wrote {args.write}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
