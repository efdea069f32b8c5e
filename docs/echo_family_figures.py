"""Measures the figures of docs/echo-family.md (HEB and RHEL single unit) and prints them as Markdown.

Run: python docs/echo_family_figures.py   (a few minutes on 2 cores when the kernels are not cached)

1. Gradients: for each model, the relative error max|estimate − BPTT| / max|BPTT| of the centred echo
   (β = 1e-4, float64) for dC/dθ, dC/dq0 and dC/dp0, the largest over seeds 0, 1, 2, on instances drawn
   like `symglep check` draws them (K = 1000 steps of dt = 0.01); and BPTT against central differences
   of the discrete loss (step 1e-6) for θ and the start.
2. Training: the RHEL sine run (`symglep train examples/oscillator_chain.py`) and the HEB run
   (`symglep train examples/heb_nonlinear_oscillator.py --task target --learn-initial-state
   --freeze-parameters`), each with the echo and with BPTT: the loss ratio first/final and the largest
   relative gap between the two loss curves over all epochs.
"""

import os
import platform
import sys

import numpy as np

import symglep
from symglep.check import draw_parameters, smooth_signal
from symglep.training import train

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLES = os.path.join(os.path.dirname(HERE), "examples")
STEPS, DT, BETA, SEEDS, EPS = 1000, 0.01, 1e-4, (0, 1, 2), 1e-6
MODELS = ["harmonic_oscillator", "oscillator_chain", "harmonic_oscillator_terminal", "oscillator_chain_terminal",
          "heb_nonlinear_oscillator"]


def rel(a, b) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def instance(model, kern, seed):
    rng = np.random.default_rng(seed)
    th = kern.theta(draw_parameters(model, rng))
    q0, p0 = rng.uniform(-0.3, 0.3, (1, model.n)), rng.uniform(-0.3, 0.3, (1, model.n))
    times = np.arange(STEPS + 1) * DT
    u = smooth_signal(rng, times, len(model.u), 0.2)[None]
    y = smooth_signal(rng, times, len(model.y), 0.3)[None]
    return th, q0, p0, u, y


def central(loss, x):
    out = np.empty(x.size)
    for i in range(x.size):
        e = np.zeros_like(x)
        e.flat[i] = EPS
        out[i] = (loss(x + e) - loss(x - e)) / (2 * EPS)
    return out


def gradient_row(name):
    model = symglep.load_model(os.path.join(EXAMPLES, name + ".py"))
    kern = symglep.compile(model)
    worst = np.zeros(5)
    for seed in SEEDS:
        th, q0, p0, u, y = instance(model, kern, seed)
        kw = dict(u=u, y=y, dt=DT)
        echo = kern.gradient(th, q0, p0=p0, beta=BETA, **kw)
        bptt = kern.bptt_gradient(th, q0, p0=p0, **kw)
        loss = lambda t=th, q=q0, p=p0: kern.free(t, q, p0=p, **kw)[2][0]  # noqa: E731
        fd_th = central(lambda t: loss(t=t), th)
        fd_start = np.concatenate([central(lambda q: loss(q=q), q0), central(lambda p: loss(p=p), p0)])
        errs = [rel(echo.dtheta, bptt.dtheta), rel(echo.dq0, bptt.dq0), rel(echo.dx0, bptt.dx0),
                rel(bptt.dtheta[0], fd_th), rel(np.concatenate([bptt.dq0[0], bptt.dx0[0]]), fd_start)]
        worst = np.maximum(worst, errs)
    cost = ("terminal" if model.cost == 0 else "running + terminal") if model.terminal_cost != 0 else "running"
    return f"| `{name}` | {cost} | " + " | ".join(f"{e:.1e}" for e in worst) + " |"


def training_row(label, spec, task, **kw):
    runs = {est: train(spec, task, estimator=est, **kw) for est in ("echo", "bptt")}
    echo, bptt = (np.array(runs[e].loss_history) for e in ("echo", "bptt"))
    gap = float(np.max(np.abs(echo - bptt) / np.abs(bptt)))
    r = runs["echo"]
    return (f"| {label} | {r.epochs} | {r.loss_history[0]:.4e} | {r.final_loss:.4e} | "
            f"{r.loss_history[0] / r.final_loss:.3g}× | {gap:.1e} |")


def main() -> None:
    print("| model | cost | echo vs BPTT dC/dθ | dC/dq0 | dC/dp0 | BPTT vs FD, θ | BPTT vs FD, start |")
    print("|---|---|---|---|---|---|---|")
    for name in MODELS:
        print(gradient_row(name))
    print()
    print("| run | epochs | first loss | final loss | lower by | echo vs BPTT loss curve |")
    print("|---|---|---|---|---|---|")
    print(training_row("RHEL, single unit: `oscillator_chain`, `--task sine`",
                       os.path.join(EXAMPLES, "oscillator_chain.py"), "sine"))
    for epochs in (100, 300):
        print(training_row("HEB: `heb_nonlinear_oscillator`, `--task target`, initial state only",
                           os.path.join(EXAMPLES, "heb_nonlinear_oscillator.py"), "target", epochs=epochs,
                           learn_initial_state=True, freeze_parameters=True))
    print()
    print(f"Produced by `python docs/echo_family_figures.py` (symglep {symglep.__version__}, numpy "
          f"{np.__version__}, Python {platform.python_version()}): K = {STEPS} steps of dt = {DT}, centred "
          f"β = {BETA}, float64, the largest error over seeds {', '.join(map(str, SEEDS))}.")


if __name__ == "__main__":
    sys.exit(main())
