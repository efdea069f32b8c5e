"""Loss-curve figures (optional extra ``plot``: matplotlib)."""

from __future__ import annotations

import io

from .extras import require
from .fileio import write_atomic


def pyplot():
    """``matplotlib.pyplot`` on the non-interactive Agg backend, or a one-line error naming the extra."""
    matplotlib = require("matplotlib", "plot", "plotting")
    matplotlib.use("Agg")
    return require("matplotlib.pyplot", "plot", "plotting")


def integer_ticks():
    """A tick locator of whole numbers (matplotlib's ``MaxNLocator(integer=True)``)."""
    return require("matplotlib.ticker", "plot", "plotting").MaxNLocator(integer=True)


def save_figure(fig, path: str, dpi: int = 120) -> None:
    """Render ``fig`` as PNG and write it atomically (no half-written file)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight", metadata={"Software": None})
    write_atomic(path, buffer.getvalue())


def plot_loss(curves: dict, path: str, title: str = "") -> None:
    """One log-scale loss curve per ``label: [loss per epoch]`` entry, written to ``path``; entries whose
    label ends in ``accuracy`` (a classification run) go to a second, linear panel."""
    plt = pyplot()
    accuracy = {k: v for k, v in curves.items() if k.endswith("accuracy")}
    losses_only = {k: v for k, v in curves.items() if k not in accuracy}
    fig, axes = plt.subplots(1, 2 if accuracy else 1, figsize=(11 if accuracy else 6, 3.6), squeeze=False)
    ax = axes[0, 0]
    for label, losses in losses_only.items():
        # entry e: epoch e + 1, as the accuracies; a marker where a curve has one point (a line would not show)
        ax.semilogy(range(1, len(losses) + 1), losses, label=label, marker="o" if len(losses) == 1 else None)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (mean per sequence)")
    ax.xaxis.set_major_locator(integer_ticks())  # epochs are whole (a probe's axis read 1.25, 1.5)
    if title:
        ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    if len(losses_only) > 1:
        ax.legend()
    if accuracy:
        right = axes[0, 1]
        for label, values in accuracy.items():
            right.plot(range(1, len(values) + 1), values, label=label, marker="o" if len(values) == 1 else None)
        right.set_xlabel("epoch")
        right.set_ylabel("accuracy")
        right.xaxis.set_major_locator(integer_ticks())
        right.set_ylim(0, 1.02)
        right.grid(True, alpha=0.3)
        right.legend()
    save_figure(fig, path)
    plt.close(fig)
