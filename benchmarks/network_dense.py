"""Network benchmark: the generated kernels of ``examples/network_dense.py`` against a hand-written
Numba reference of the same network, echo against BPTT, with peak memory; and the size
independence of derive + generate + compile (docs/networks.md).

The network (n units, m = 2 inputs, the last 2 units read out):

    L = Σ_i ½ q̇_i² − Σ_i (q_i²/2 + q_i⁴/8) + ½ Σ_ij W_ij tanh q_i tanh q_j + Σ_i q_i (B u)_i

Measurements, for every n in ``--sizes`` and batch in ``--batches`` (K = ``--steps``):

* ``echo``: the generated centred echo gradient (3 passes, β = 1e-4; module kernel, arrays prepared);
* ``hand``: :func:`hand_gradient`, a hand-written ``@njit(parallel=True)`` echo of the same network
  below (prange over sequences, kick–drift–kick with one force per step, ``W b`` and ``Wᵀ a`` in one
  sweep over W, the rank-one updates of ``∂V/∂W`` per node) — the results must agree with the
  generated ones to 1e-9 (checked; the script stops otherwise);
* ``bptt``: the generated discrete adjoint of the same leapfrog;
* peak memory of ``echo`` and ``bptt``, each call in a fresh subprocess (VmHWM growth over VmRSS
  after a warm-up, as in ``benchmarks/kernels_chain.py``).

Timings: one warm-up call, then the median of ``--repeats`` interleaved calls per kernel. The
size table: time of derive + generate at ``model.size`` = 16 and 1024 (n is not an input of either),
a cold compile (empty cache, fresh process) and a warm one (cached, fresh process) of each example.

This is a measurement script, not a test: it never asserts a time.

Usage::

    python benchmarks/network_dense.py [--sizes 64 256 1024] [--batches 1 32] [--steps 1000]
        [--repeats 3] [--no-memory] [--no-compile] [--write docs/benchmarks-networks.md]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from numba import njit, prange

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import ROOT, cpu_name, git_state, load_average  # noqa: E402

import symglep  # noqa: E402

DT, BETA, M, NY = 0.01, 1e-4, 2, 2
EXAMPLE = str(ROOT / "examples" / "network_dense.py")


# ---------------------------------------------------------------------------
# The hand-written reference (same network, same discrete loss, same estimator).
# ---------------------------------------------------------------------------

@njit(cache=True, error_model="numpy")
def hand_force(W, B, q, uk, yk, beta, f, a, a1, b, b1, mv1, mv2):
    """f = dV/dq + beta dc/dq; a = -tanh/2, b = tanh (and derivatives) kept for the learning rule."""
    n = q.shape[0]
    for i in range(n):
        t = math.tanh(q[i])
        a[i] = -0.5 * t
        a1[i] = -0.5 * (1.0 - t * t)
        b[i] = t
        b1[i] = 1.0 - t * t
        mv2[i] = 0.0
    for i in range(n):
        s = 0.0
        ai = a[i]
        for j in range(n):
            w = W[i, j]
            s += w * b[j]
            mv2[j] += ai * w
        mv1[i] = s
    for i in range(n):
        x = q[i]
        d = 0.0
        for j in range(uk.shape[0]):
            d += B[i, j] * uk[j]
        f[i] = x + 0.5 * x * x * x + a1[i] * mv1[i] + b1[i] * mv2[i] - d
    for r in range(yk.shape[0]):
        k = n - yk.shape[0] + r
        f[k] += beta * (q[k] - yk[r])


@njit(cache=True, error_model="numpy")
def hand_pass(W, B, q, p, u, y, h, betas, reverse, learn, GW, GB):
    """K leapfrog steps for each nudge (rows of q, p); returns the free loss of row 0 (trapezoid)."""
    n = q.shape[1]
    K = u.shape[0] - 1
    nb = betas.shape[0]
    f = np.empty((nb, n))
    a, a1, b, b1 = np.empty(n), np.empty(n), np.empty(n), np.empty(n)
    mv1, mv2 = np.empty(n), np.empty(n)
    loss = 0.0
    for step in range(K + 1):
        k = K - step if reverse else step
        w = 0.5 if (step == 0 or step == K) else 1.0
        for e in range(nb):
            if step > 0:
                for i in range(n):
                    p[e, i] -= 0.5 * h * f[e, i]
                    q[e, i] += h * p[e, i]
            hand_force(W, B, q[e], u[k], y[k], betas[e], f[e], a, a1, b, b1, mv1, mv2)
            if step > 0:
                for i in range(n):
                    p[e, i] -= 0.5 * h * f[e, i]
            if e == 0:
                for r in range(y.shape[1]):
                    d = q[0, n - y.shape[1] + r] - y[k, r]
                    loss += w * h * 0.5 * d * d
            if learn:
                for i in range(n):
                    ai = w * h * a[i]
                    for j in range(n):
                        GW[e, i, j] += ai * b[j]
                    qi = -w * h * q[e, i]
                    for j in range(u.shape[1]):
                        GB[e, i, j] += qi * u[k, j]
    return loss


@njit(parallel=True, cache=True, error_model="numpy")
def hand_gradient(W, B, q0, p0, u, y, h, beta):
    """Centred echo (theory §5): (loss, dW, dB, dq0, dp0) per sequence."""
    nseq, n = q0.shape
    loss = np.empty(nseq)
    dW = np.empty((nseq, n, n))
    dB = np.empty((nseq, n, B.shape[1]))
    dq0 = np.empty((nseq, n))
    dp0 = np.empty((nseq, n))
    for s in prange(nseq):
        q = q0[s:s + 1].copy()
        p = p0[s:s + 1].copy()
        none = np.zeros((1, 1, 1))
        loss[s] = hand_pass(W, B, q, p, u[s], y[s], h, np.zeros(1), False, False, none, none)
        qe = np.empty((2, n))
        pe = np.empty((2, n))
        for e in range(2):
            qe[e] = q[0]
            pe[e] = -p[0]
        GW = np.zeros((2, n, n))
        GB = np.zeros((2, n, B.shape[1]))
        betas = np.array([beta, -beta])
        hand_pass(W, B, qe, pe, u[s], y[s], h, betas, True, True, GW, GB)
        c = 1.0 / (2.0 * beta)
        dW[s] = (GW[0] - GW[1]) * c
        dB[s] = (GB[0] - GB[1]) * c
        dq0[s] = -(pe[0] - pe[1]) * c
        dp0[s] = -(qe[0] - qe[1]) * c
    return loss, dW, dB, dq0, dp0


# ---------------------------------------------------------------------------

def problem(n: int, batch: int, steps: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    W = rng.uniform(-1, 1, (n, n)) / math.sqrt(n)
    B = rng.uniform(-0.5, 0.5, (n, M))
    q0 = rng.uniform(-0.3, 0.3, (batch, n))
    p0 = rng.uniform(-0.3, 0.3, (batch, n))
    t = np.arange(steps + 1) * DT
    u = 0.3 * np.sin(t[None, :, None] * rng.uniform(0.5, 3, (batch, 1, M)))
    y = 0.3 * np.cos(t[None, :, None] * rng.uniform(0.5, 3, (batch, 1, NY)))
    return W, B, q0, p0, np.ascontiguousarray(u), np.ascontiguousarray(y)


def kernels_and_args(n, batch, steps):
    kern = symglep.compile(symglep.load_model(EXAMPLE), dt=DT)
    W, B, q0, p0, u, y = problem(n, batch, steps)
    args, _ = kern.prepare({"W": W, "B": B}, q0, p0, u, y)
    return kern, args, (W, B, q0, p0, u, y)


def median_time(fn, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def time_row(n, batch, steps, repeats, with_bptt=True):
    kern, args, (W, B, q0, p0, u, y) = kernels_and_args(n, batch, steps)
    mod = kern.module
    gen = lambda: mod.gradient(*args, DT, 0.0, BETA, 2)  # noqa: E731
    hand = lambda: hand_gradient(W, B, q0, p0, u, y, DT, BETA)  # noqa: E731
    bptt = lambda: mod.bptt_gradient(*args, DT, 0.0)  # noqa: E731
    g, r = gen(), hand()
    flat_ref = np.concatenate([r[1].reshape(batch, -1), r[2].reshape(batch, -1)], axis=1)
    err = max(np.max(np.abs(g[1] - flat_ref)) / np.max(np.abs(flat_ref)),
              np.max(np.abs(g[2] - r[3])) / np.max(np.abs(r[3])))
    if not err <= 1e-9 or not np.allclose(g[0], r[0], rtol=1e-12):
        sys.exit(f"generated and hand-written gradients disagree at n = {n} (max rel. {err:.2e}); stopping")
    kernels = (("echo", gen), ("hand", hand), ("bptt", bptt)) if with_bptt else (("echo", gen), ("hand", hand))
    if with_bptt:
        t0 = time.perf_counter()
        bptt()
        if time.perf_counter() - t0 > 20 and repeats > 2:  # the largest rows: fewer timed runs (stated)
            repeats = 1
    t = {name: [] for name, _ in kernels}
    for _ in range(repeats):  # interleaved
        for name, fn in kernels:
            t[name].append(median_time(fn, 1))
    med = {k: statistics.median(v) for k, v in t.items()}
    med.setdefault("bptt", float("nan"))
    return {"n": n, "batch": batch, "steps": steps, **med, "agreement": err, "runs": repeats}


# -- peak memory, one call per fresh process ---------------------------------------------------

def _status_kib(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def memory_child(method, n, batch, steps):
    kern, args, _ = kernels_and_args(n, batch, 2)
    fn = {"echo": lambda a: kern.module.gradient(*a, DT, 0.0, BETA, 2),
          "bptt": lambda a: kern.module.bptt_gradient(*a, DT, 0.0)}[method]
    fn(args)
    _, args, _ = kernels_and_args(n, batch, steps)
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass
    rss0 = _status_kib("VmRSS")
    fn(args)
    print(json.dumps({"peak_mib": (_status_kib("VmHWM") - rss0) / 1024}))


def memory(method, n, batch, steps):
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536")
    out = subprocess.run([sys.executable, __file__, "--memory-child", method, str(n), str(batch), str(steps)],
                         capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["peak_mib"]


# -- size independence of derive + generate + compile ---------------------------------------

COMPILE_CHILD = """
import sys, time
t0 = time.perf_counter()
import symglep
model = symglep.load_model(sys.argv[1])
t1 = time.perf_counter()
k = symglep.compile(model, warm=True)
t2 = time.perf_counter()
print(f"{t1 - t0:.3f} {t2 - t1:.3f} {int(k.generated_source)}")
"""


def compile_rows():
    from symglep.network.runtime import generate_source

    rows = []
    for name in ("dense", "springs", "hru"):
        path = str(ROOT / "examples" / f"network_{name}.py")
        gen = {}
        for size in (16, 1024):
            model = symglep.load_model(path)
            model.size = size
            t0 = time.perf_counter()
            for _ in range(3):
                model2 = symglep.load_model(path)
                model2.size = size
                generate_source(model2)
            gen[size] = (time.perf_counter() - t0) / 3
        with tempfile.TemporaryDirectory() as cache:
            env = dict(os.environ, SYMGLEP_CACHE_DIR=cache)
            times = []
            for _ in range(2):  # cold (empty cache), then warm (cached), each a fresh process
                out = subprocess.run([sys.executable, "-c", COMPILE_CHILD, path], capture_output=True, text=True,
                                     env=env, check=True).stdout.split()
                times.append((float(out[0]), float(out[1]), out[2] == "1"))
        rows.append({"model": f"network_{name}", "generate_16": gen[16], "generate_1024": gen[1024],
                     "cold": times[0][1], "cold_generated": times[0][2], "warm": times[1][1],
                     "warm_generated": times[1][2], "import": times[1][0]})
    return rows


def report(rows, mem, comp, args) -> str:
    lines = [f"Machine: {cpu_name()}, {os.cpu_count()} CPUs, load average {load_average()} at the end; "
             f"checkout {git_state()}; K = {args.steps}, β = {BETA}, median of {args.repeats} interleaved runs.", ""]
    if rows:
        lines += ["| n | B | runs | generated echo (s) | hand-written echo (s) | echo / hand | generated BPTT (s) | "
                  "echo / BPTT | peak memory echo (MiB) | peak memory BPTT (MiB) |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for r in rows:
            m = mem.get((r["n"], r["batch"]), (float("nan"), float("nan")))
            lines.append(f"| {r['n']} | {r['batch']} | {r['runs']} | {r['echo']:.3f} | {r['hand']:.3f} | "
                         f"{r['echo'] / r['hand']:.2f} | {r['bptt']:.3f} | {r['echo'] / r['bptt']:.2f} | "
                         f"{m[0]:.1f} | {m[1]:.1f} |")
        lines.append("")
    if comp:
        lines += ["| model | derive + generate at size 16 (s) | at size 1024 (s) | cold compile, empty cache (s) | "
                  "warm compile, cached (s) |", "|---|---|---|---|---|"]
        for c in comp:
            lines.append(f"| {c['model']} | {c['generate_16']:.2f} | {c['generate_1024']:.2f} | {c['cold']:.1f} | "
                         f"{c['warm']:.2f} |")
        lines.append("")
        lines.append("(cold: `symglep.compile` in a fresh process with an empty cache: derive, generate, "
                     "write, Numba compile; warm: the same call in a fresh process with the cache filled; "
                     "`import symglep` and loading the model file excluded.)")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 256, 1024])
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 32])
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-memory", action="store_true")
    ap.add_argument("--no-compile", action="store_true")
    ap.add_argument("--no-timing", action="store_true")
    ap.add_argument("--no-bptt", action="store_true", help="time the two echoes only")
    ap.add_argument("--write", help="also write the table to this markdown file (appended section)")
    ap.add_argument("--memory-child", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.memory_child:
        method, n, batch, steps = args.memory_child
        return memory_child(method, int(n), int(batch), int(steps))
    rows, mem = [], {}
    if not args.no_timing:
        for n in args.sizes:
            for batch in args.batches:
                rows.append(time_row(n, batch, args.steps, args.repeats, not args.no_bptt))
                if not args.no_memory:
                    mem[(n, batch)] = (memory("echo", n, batch, args.steps), memory("bptt", n, batch, args.steps))
                print(rows[-1], mem.get((n, batch)), flush=True)
    comp = [] if args.no_compile else compile_rows()
    text = report(rows, mem, comp, args)
    print(text)
    if args.write:
        with open(args.write, "a", encoding="utf-8") as f:
            f.write(text)


if __name__ == "__main__":
    main()
