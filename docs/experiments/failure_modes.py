"""Failure modes of the echo gradient: β, sequence length T, and injected non-reversibility.

Each study compares the echo estimate of dC/dθ with BPTT through the same integrator
(relative error ‖echo − BPTT‖ / ‖BPTT‖, theory §5–§6):

1. against β, centred and one-sided (oscillator chain, K = 1000): bias O(β²) or O(β)
   down to a round-off floor O(ε/β);
2. against the sequence length: the regular chain, and the double pendulum at an energy
   where it is chaotic, whose echo amplifies round-off exponentially (round trip reported too);
3. against damping γ: a Duffing oscillator in Caldirola–Kanai form, L = e^{γt}(ẋ²/2 − kx²/2 −
   ax⁴/4 + xu) (theory §7). symglep's echo replays e^{γt} reversed (anti-damped) and stays exact;
   a *naive* echo, the damped system itself run forward from the flipped state (what hardware that
   dissipates in both phases does: its velocity flipped, the nudge plain), is not the gradient;
4. against the Newton tolerance of the midpoint rule (the same oscillator, γ = 0, compiled with
   ``symglep.compile(..., newton_tol=...)``): an inexact step map is not exactly reversible.

Outputs: failure_modes.md, failure_modes.png (this folder).
"""

from __future__ import annotations

import numpy as np
import sympy as sp
from sympy.physics.mechanics import dynamicsymbols

from _common import EXAMPLES, figure_path, setup, table, write_report

setup()

import symglep  # noqa: E402
from symglep.check import rel_err, smooth_signal  # noqa: E402
from symglep.plotting import pyplot, save_figure  # noqa: E402

SEED = 0


def chain_instance(K, dt=0.05, seed=SEED):
    model = symglep.load_model(str(EXAMPLES / "oscillator_chain.py"))
    kernels = symglep.compile(model, dt=dt)
    rng = np.random.default_rng(seed)
    theta = np.array([1.2, 0.8, 1.0])
    q0 = rng.uniform(-0.3, 0.3, (1, 4))
    p0 = rng.uniform(-0.3, 0.3, (1, 4))
    t = np.arange(K + 1) * dt
    return kernels, theta, q0, p0, smooth_signal(rng, t, 1, 0.3)[None], smooth_signal(rng, t, 1, 0.3)[None]


def roundtrip(kernels, theta, q0, p0, u, y):
    qT, pT, _ = kernels.free(theta, q0, p0=p0, u=u, y=y)
    sigma, pi, _, _ = kernels.echo(theta, qT, pT, [0.0], u=u, y=y)
    return float(max(np.max(np.abs(sigma[:, 0] - q0)), np.max(np.abs(pi[:, 0] + p0))))


def study_beta():
    kernels, theta, q0, p0, u, y = chain_instance(1000)
    bptt = kernels.bptt_gradient(theta, q0, p0=p0, u=u, y=y).dtheta[0]
    betas = np.logspace(-10, -1, 19)
    centred = [rel_err(kernels.gradient(theta, q0, p0=p0, u=u, y=y, beta=b).dtheta[0], bptt) for b in betas]
    one_sided = [rel_err(kernels.gradient(theta, q0, p0=p0, u=u, y=y, beta=b, centred=False).dtheta[0], bptt)
                 for b in betas]
    return betas, centred, one_sided


def study_length():
    chain = []
    for K in [100, 1000, 10000, 100000]:
        kernels, theta, q0, p0, u, y = chain_instance(K)
        e = kernels.gradient(theta, q0, p0=p0, u=u, y=y, beta=1e-4).dtheta[0]
        small = kernels.gradient(theta, q0, p0=p0, u=u, y=y, beta=1e-6).dtheta[0]
        b = kernels.bptt_gradient(theta, q0, p0=p0, u=u, y=y).dtheta[0]
        chain.append((K, K * 0.05, rel_err(e, b), rel_err(small, b), roundtrip(kernels, theta, q0, p0, u, y)))
    model = symglep.load_model(str(EXAMPLES / "double_pendulum.py"))
    dt = 0.01
    kernels = symglep.compile(model, dt=dt)
    theta = np.array([1.0, 1.0, 1.0, 1.0])
    q0, p0 = np.array([[2.0, 2.5]]), np.zeros((1, 2))  # large angles: chaotic
    pendulum = []
    for K in [100, 300, 1000, 3000, 10000]:
        rng = np.random.default_rng(SEED)
        t = np.arange(K + 1) * dt
        u = smooth_signal(rng, t, 1, 0.2)[None]
        y = smooth_signal(rng, t, 1, 0.3)[None]
        e = kernels.gradient(theta, q0, p0=p0, u=u, y=y, beta=1e-4).dtheta[0]
        b = kernels.bptt_gradient(theta, q0, p0=p0, u=u, y=y).dtheta[0]
        pendulum.append((K, K * dt, rel_err(e, b), roundtrip(kernels, theta, q0, p0, u, y), float(np.linalg.norm(b))))
    return chain, pendulum


def duffing(name="damped_duffing"):
    """A driven Duffing oscillator in Caldirola–Kanai form; γ is a parameter so one compile serves all γ."""
    x = dynamicsymbols("x")
    u, y = dynamicsymbols("u y")
    k, a, gamma = sp.symbols("k a gamma")
    t = dynamicsymbols._t
    lagrangian = sp.exp(gamma * t) * (x.diff() ** 2 / 2 - k * x**2 / 2 - a * x**4 / 4 + x * u)
    return symglep.Model(lagrangian=lagrangian, coordinates=[x], parameters=[k, a, gamma], inputs=[u],
                         targets=[y], cost=(x - y) ** 2 / 2, name=name)


def duffing_instance(K, dt):
    rng = np.random.default_rng(SEED)
    t = np.arange(K + 1) * dt
    return np.array([[0.8]]), np.array([[0.0]]), smooth_signal(rng, t, 1, 1.0)[None], smooth_signal(rng, t, 1, 0.5)[None]


def study_damping(K=1000, dt=0.02, beta=1e-4):
    kernels = symglep.compile(duffing(), dt=dt, warm=False)
    q0, p0, u, y = duffing_instance(K, dt)
    T = K * dt
    rows = []
    for gamma in [0.0, 1e-4, 1e-3, 1e-2, 3e-2, 1e-1]:
        theta = np.array([1.0, 0.5, gamma])
        bptt = kernels.bptt_gradient(theta, q0, p0=p0, u=u, y=y).dtheta[0, :2]
        exact = kernels.gradient(theta, q0, p0=p0, u=u, y=y, beta=beta).dtheta[0, :2]
        qT, pT, _ = kernels.free(theta, q0, p0=p0, u=u, y=y)
        # The damped system in its own time from the flipped state: velocity -v(T), momentum -e^{-γT} p_K.
        _, _, G, _ = kernels.nudged(theta, qT, [beta, -beta], p0=-np.exp(-gamma * T) * pT,
                                    u=u[:, ::-1].copy(), y=y[:, ::-1].copy())
        naive = (G[0, 0, :2] - G[0, 1, :2]) / (2 * beta)
        rows.append((gamma, gamma * T, rel_err(exact, bptt), rel_err(naive, bptt)))
    return rows


def study_newton(K=1000, dt=0.1, beta=1e-4):
    q0, p0, u, y = duffing_instance(K, dt)
    q0 = np.array([[1.5]])
    theta = np.array([1.0, 0.5, 0.0])
    rows = []
    for tol in [1e-13, 1e-10, 1e-8, 1e-6, 1e-4, 1e-2, 1.0]:
        kernels = symglep.compile(duffing(), dt=dt, warm=False, newton_tol=tol)
        bptt = kernels.bptt_gradient(theta, q0, p0=p0, u=u, y=y).dtheta[0, :2]
        echo = kernels.gradient(theta, q0, p0=p0, u=u, y=y, beta=beta).dtheta[0, :2]
        small = kernels.gradient(theta, q0, p0=p0, u=u, y=y, beta=1e-6).dtheta[0, :2]
        rows.append((tol, rel_err(echo, bptt), rel_err(small, bptt), roundtrip(kernels, theta, q0, p0, u, y)))
    return rows


def findings(betas, centred, one_sided, chain, pendulum, damping, newton) -> str:
    """What the tables show, with their numbers."""
    best = int(np.argmin(centred))
    broken = next((r for r in pendulum if r[2] > 1e-2), None)
    lines = [
        "\n## What the numbers say\n",
        f"- **β**: the centred estimator's error falls as β² to {centred[best]:.1e} at β = {betas[best]:.0e}; "
        f"below that, round-off in the contrast, O(ε/β), takes over. The one-sided estimator falls only as β "
        f"(best {min(one_sided):.1e}). Default β = 1e-4 sits on the bias side, at {centred[np.argmin(abs(np.log(betas / 1e-4)))]:.1e}.",
        f"- **T, regular system**: the round trip stays at round-off ({chain[-1][4]:.0e} after K = {chain[-1][0]}), "
        f"but the β² bias grows with T, as the run's response to the nudge grows: {chain[0][2]:.0e} at K = {chain[0][0]} "
        f"to {chain[-1][2]:.0e} at K = {chain[-1][0]}; a smaller β removes it ({chain[-1][3]:.0e} with β = 1e-6). "
        "For long sequences, lower β.",
        "- **T, chaotic system**: the gradient itself grows exponentially (‖dC/dθ‖ column); the nudged run leaves "
        "the linear regime of β"
        + (f" and the echo is useless from T = {broken[1]:g} on (error {broken[2]:.2f}), " if broken else ", ")
        + "and round-off is amplified until the echo no longer returns to the start. BPTT's gradient is still the "
        "exact gradient of the discrete loss, but at 1e18–1e62 it is no useful descent direction either.",
        f"- **damping**: symglep's echo, which replays the Caldirola–Kanai factor reversed, stays exact at every γ "
        f"({max(r[2] for r in damping):.0e} or better, its β² bias); an echo through the damped system itself is off "
        f"in proportion to γT (about {damping[1][3] / damping[1][1]:.1f}·γT for small γT: {damping[1][3]:.0e} at "
        f"γT = {damping[1][1]:g}, {damping[-1][3]:.1f} at γT = {damping[-1][1]:g}). "
        "Dissipation the echo cannot undo biases the gradient in proportion to the energy lost.",
        f"- **Newton tolerance**: the generated Newton loop takes one more (polishing) iteration after its step passes "
        f"the tolerance, so even a tolerance of 1 leaves a round trip of {newton[-1][3]:.0e}; the gradient does not "
        f"move at β = 1e-4 ({newton[0][1]:.2e} → {newton[-1][1]:.2e}, the β² bias) and at β = 1e-6 goes "
        f"{newton[0][2]:.1e} → {newton[-1][2]:.1e}. With the polishing step, a loose tolerance is not a practical "
        "failure mode of the generated kernels (a Newton loop that stops without it was not measured).",
    ]
    return "\n".join(lines) + "\n"


def main():
    betas, centred, one_sided = study_beta()
    chain, pendulum = study_length()
    damping = study_damping()
    newton = study_newton()

    plt = pyplot()
    fig, ax = plt.subplots(2, 2, figsize=(11, 7.5))
    a = ax[0, 0]
    a.loglog(betas, centred, "o-", label="centred (3 passes)")
    a.loglog(betas, one_sided, "s-", label="one-sided (2 passes)")
    a.set_xlabel("β")
    a.set_title("1. against β (oscillator chain, K = 1000)")
    a = ax[0, 1]
    a.loglog([r[1] for r in chain], [r[2] for r in chain], "o-", label="chain: echo vs BPTT")
    a.loglog([r[1] for r in chain], [r[3] for r in chain], "o--", label="chain: echo (β = 1e-6) vs BPTT")
    a.loglog([r[1] for r in chain], [max(r[4], 1e-17) for r in chain], "o:", label="chain: round trip")
    a.loglog([r[1] for r in pendulum], [r[2] for r in pendulum], "s-", label="chaotic double pendulum: echo vs BPTT")
    a.loglog([r[1] for r in pendulum], [r[3] for r in pendulum], "s:", label="chaotic double pendulum: round trip")
    a.set_xlabel("sequence length T")
    a.set_title("2. against T (β = 1e-4 unless labelled)")
    a = ax[1, 0]
    g = [r[0] for r in damping[1:]]
    a.loglog(g, [r[2] for r in damping[1:]], "o-", label="symglep echo (replays exp(γt) reversed)")
    a.loglog(g, [r[3] for r in damping[1:]], "s-", label="naive echo (damped in both phases)")
    a.set_xlabel("damping γ (T = 20)")
    a.set_title("3. against damping (Caldirola–Kanai Duffing)")
    a = ax[1, 1]
    a.loglog([r[0] for r in newton], [r[1] for r in newton], "o-", label="echo (β = 1e-4) vs BPTT")
    a.loglog([r[0] for r in newton], [r[2] for r in newton], "o--", label="echo (β = 1e-6) vs BPTT")
    a.loglog([r[0] for r in newton], [max(r[3], 1e-17) for r in newton], "s:", label="round trip")
    a.set_xlabel("Newton tolerance (midpoint rule)")
    a.set_title("4. against the Newton tolerance (Duffing, dt = 0.1)")
    for a in ax.flat:
        a.set_ylabel("relative error")
        a.grid(True, which="both", alpha=0.3)
        a.legend(fontsize=6)
    fig.tight_layout()
    save_figure(fig, figure_path("failure_modes"))

    body = "## 1. Against β\n\nOscillator chain, K = 1000 steps of dt = 0.05, seeded drive and target.\n\n"
    body += table(["β", "centred", "one-sided"], [[float(b), c, o] for b, c, o in zip(betas, centred, one_sided)])
    body += "\n## 2. Against the sequence length\n\nOscillator chain (regular), β = 1e-4:\n\n"
    body += table(["K", "T", "echo vs BPTT", "echo (β = 1e-6) vs BPTT", "round trip"], [list(r) for r in chain])
    body += ("\nDouble pendulum started at angles (2.0, 2.5) rad, at rest (chaotic), dt = 0.01, β = 1e-4; "
             "‖BPTT‖ shows the gradient itself growing with the Lyapunov exponent:\n\n")
    body += table(["K", "T", "echo vs BPTT", "round trip", "‖dC/dθ‖ (BPTT)"], [list(r) for r in pendulum])
    body += ("\n## 3. Against damping\n\nDuffing oscillator (k = 1, a = 0.5) in Caldirola–Kanai form, midpoint rule, "
             "K = 1000, dt = 0.02 (T = 20), β = 1e-4; error on (k, a):\n\n")
    body += table(["γ", "γT", "symglep echo vs BPTT", "naive echo vs BPTT"], [list(r) for r in damping])
    body += ("\n## 4. Against the Newton tolerance\n\nThe same oscillator undamped (γ = 0), midpoint rule, "
             "K = 1000, dt = 0.1, x(0) = 1.5, kernels compiled with `newton_tol`:\n\n")
    body += table(["Newton tolerance", "echo vs BPTT", "echo (β = 1e-6) vs BPTT", "round trip"],
                  [list(r) for r in newton])
    body += findings(betas, centred, one_sided, chain, pendulum, damping, newton)
    body += "\n![failure modes](failure_modes.png)\n"
    write_report("failure_modes", "Failure modes of the echo gradient", body)


if __name__ == "__main__":
    main()
