"""Measures the figure and the table of docs/noise.md: error of the echo gradient against β under noise.

Run: python docs/noise_figures.py   (writes docs/noise.png, prints the Markdown table; about a
minute on 2 cores when the kernels are cached)

For each example, the instance `symglep check` draws (seed 0, K = 1000 steps of dt = 0.01), the
noise study of symglep.noise (what `symglep check --noise SIGMA` runs): Gaussian noise of std σ
on every learning integral G(±β), G(±2β), 400 seeded repetitions per β on a grid of 25 β from
1e-7 to 1e-1; the relative RMS error of the centred and the Richardson contrast against BPTT.
σ = 0 is the noiseless contrast (its bias, and float64 round-off at small β).
"""

import os
import platform
import sys

import numpy as np

import symglep
from symglep.check import run_check
from symglep.plotting import pyplot, save_figure

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLES = os.path.join(os.path.dirname(HERE), "examples")
MODELS = ["harmonic_oscillator", "double_pendulum"]
SIGMAS = [0.0, 1e-12, 1e-10, 1e-8, 1e-6]
STYLE = {"centred": "-", "richardson": "--"}


def measure(name: str) -> dict:
    model = symglep.load_model(os.path.join(EXAMPLES, f"{name}.py"))
    return run_check(model, noise=SIGMAS)["noise"]


def table(results: dict) -> str:
    rows = ["| example | σ | estimator | best β (measured) | best β (predicted) | RMS error there | bias | std "
            "(measured / predicted) |", "|---|---|---|---|---|---|---|---|"]
    for name, s in results.items():
        for key, per in s["curves"].items():
            for est, c in per.items():
                i = s["betas"].index(c["best_beta"])
                rows.append(f"| {name} | {float(key):.0e} | {est} | {c['best_beta']:.2e} | "
                            f"{c['best_beta_predicted']:.2e} | {c['rms'][i]:.2e} | {c['bias'][i]:.2e} | "
                            f"{c['std'][i]:.2e} / {c['std_predicted'][i]:.2e} |")
    return "\n".join(rows)


def figure(results: dict, path: str) -> None:
    plt = pyplot()
    fig, axes = plt.subplots(1, len(results), figsize=(6 * len(results), 5.2), sharey=True)
    colours = plt.get_cmap("viridis")(np.linspace(0, 0.9, len(SIGMAS)))
    for ax, (name, s) in zip(np.atleast_1d(axes), results.items()):
        for colour, (key, per) in zip(colours, s["curves"].items()):
            for est, c in per.items():
                label = f"σ = {float(key):.0e}, {est}"
                ax.loglog(s["betas"], c["rms"], STYLE[est], color=colour, label=label)
                ax.plot(c["best_beta"], c["best_rms"], "o", color=colour, ms=4)
        ax.set_title(f"{name} (K = 1000, dt = 0.01)")
        ax.set_xlabel("β")
        ax.grid(True, which="major", alpha=0.3)
    np.atleast_1d(axes)[0].set_ylabel("relative RMS error vs BPTT")
    handles, labels = np.atleast_1d(axes)[0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=7, ncol=5, loc="lower center")
    fig.suptitle("Echo gradient under Gaussian noise on G(±β): solid centred, dashed Richardson (±β, ±2β); "
                 "dots: best β", fontsize=10)
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    save_figure(fig, path, dpi=110)


def main() -> None:
    results = {name: measure(name) for name in MODELS}
    figure(results, os.path.join(HERE, "noise.png"))
    print(f"Measured by `python docs/noise_figures.py` (symglep {symglep.__version__}, numpy {np.__version__}, "
          f"Python {platform.python_version()}).\n")
    print(table(results))


if __name__ == "__main__":
    sys.exit(main())
