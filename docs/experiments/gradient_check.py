"""Experiment 2: the harmonic oscillator's gradient against finite differences (theory §5, §6).

One seeded instance of examples/harmonic_oscillator.py (leapfrog, K = 1000 steps of
dt = 0.01, a random smooth drive and target): the echo estimate (centred, β = 1e-4),
BPTT through the same integrator, and central finite differences of the discrete loss,
for the parameters k, m and the initial state q0, p0. The figure sweeps the finite-difference
step ε (truncation error O(ε²) on the right, round-off O(1/ε) on the left) and, on the
same axis, the echo's nudge β (bias O(β²), round-off O(1/β)), both against BPTT.

Outputs: gradient_check.md, gradient_check.png (this folder).
"""

from __future__ import annotations

import numpy as np

from _common import EXAMPLES, figure_path, setup, table, write_report

setup()

import symglep  # noqa: E402
from symglep.check import rel_err, smooth_signal  # noqa: E402
from symglep.plotting import pyplot, save_figure  # noqa: E402

K, DT, BETA, SEED = 1000, 0.01, 1e-4, 0


def main():
    model = symglep.load_model(str(EXAMPLES / "harmonic_oscillator.py"))
    kernels = symglep.compile(model, dt=DT)
    rng = np.random.default_rng(SEED)
    theta = np.array([1.3, 0.8])  # k, m
    q0, p0 = np.array([[0.2]]), np.array([[-0.1]])
    t = np.arange(K + 1) * DT
    u = smooth_signal(rng, t, 1, 0.5)[None]
    y = smooth_signal(rng, t, 1, 0.3)[None]

    echo = kernels.gradient(theta, q0, p0=p0, u=u, y=y, beta=BETA)
    bptt = kernels.bptt_gradient(theta, q0, p0=p0, u=u, y=y)
    x = np.array([theta[0], theta[1], q0[0, 0], p0[0, 0]])

    def loss(z):
        return kernels.free(z[:2], z[2:3][None], p0=z[3:4][None], u=u, y=y)[2][0]

    def central(eps):
        out = np.empty(4)
        for i in range(4):
            hi, lo = x.copy(), x.copy()
            hi[i] += eps
            lo[i] -= eps
            out[i] = (loss(hi) - loss(lo)) / (2 * eps)
        return out

    g_echo = np.concatenate([echo.dtheta[0], echo.dq0[0], echo.dx0[0]])
    g_bptt = np.concatenate([bptt.dtheta[0], bptt.dq0[0], bptt.dx0[0]])
    g_fd = central(1e-5)
    names = ["k", "m", "q0", "p0"]
    rows = [[n, float(a), float(b), float(c), float(abs(a - b) / abs(b)), float(abs(c - b) / abs(b))]
            for n, a, b, c in zip(names, g_echo, g_bptt, g_fd)]
    steps = np.logspace(-9, -1, 17)
    fd_err = [rel_err(central(e), g_bptt) for e in steps]
    echo_err = rel_err(g_echo, g_bptt)
    echo_sweep = []
    for b in steps:
        r = kernels.gradient(theta, q0, p0=p0, u=u, y=y, beta=b)
        echo_sweep.append(rel_err(np.concatenate([r.dtheta[0], r.dq0[0], r.dx0[0]]), g_bptt))

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.8))
    ax.loglog(steps, fd_err, "o-", label="central differences (step ε) vs BPTT")
    ax.loglog(steps, echo_sweep, "s-", label="centred echo (nudge β) vs BPTT")
    ax.set_xlabel("finite-difference step ε, or nudge β")
    ax.set_ylabel("relative error ‖g − g_BPTT‖ / ‖g_BPTT‖")
    ax.set_title("harmonic oscillator: gradient of the discrete loss")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    save_figure(fig, figure_path("gradient_check"))

    body = (f"Loss {echo.loss[0]:.10g} (K = {K}, dt = {DT}, k = {theta[0]}, m = {theta[1]}, "
            f"q0 = {q0[0, 0]}, p0 = {p0[0, 0]}, seed {SEED}). Finite differences with ε = 1e-5.\n\n")
    body += table(["gradient", "echo (β = 1e-4)", "BPTT", "finite differences", "rel. err echo", "rel. err FD"], rows)
    best, best_echo = int(np.argmin(fd_err)), int(np.argmin(echo_sweep))
    body += (f"\nOverall (all four entries): echo vs BPTT {echo_err:.2e} at β = {BETA:g}; central differences "
             f"vs BPTT at best {fd_err[best]:.2e} (ε = {steps[best]:.0e}). The echo's error is its O(β²) bias "
             f"(the nudge β stiffens the oscillator, so the nudged run is not affine in β); it falls to "
             f"{echo_sweep[best_echo]:.1e} at β = {steps[best_echo]:.0e}, below which round-off, O(1/β), "
             "takes over, the same V shape as finite differences. Both the echo and BPTT differentiate the "
             "same discrete loss that the finite differences probe.\n\n"
             "| step | " + " | ".join(f"{e:.0e}" for e in steps[::2]) + " |\n|" + "---|" * (len(steps[::2]) + 1) +
             "\n| FD (ε) | " + " | ".join(f"{e:.1e}" for e in fd_err[::2]) + " |\n"
             "| echo (β) | " + " | ".join(f"{e:.1e}" for e in echo_sweep[::2]) + " |\n\n"
             "![finite-difference sweep](gradient_check.png)\n")
    write_report("gradient_check", "Experiment 2: harmonic oscillator gradient vs finite differences", body)


if __name__ == "__main__":
    main()
