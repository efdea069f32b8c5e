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


def save_figure(fig, path: str, dpi: int = 120) -> None:
    """Render ``fig`` as PNG and write it atomically (no half-written file)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight", metadata={"Software": None})
    write_atomic(path, buffer.getvalue())


def plot_loss(curves: dict, path: str, title: str = "") -> None:
    """One log-scale loss curve per ``label: [loss per epoch]`` entry, written to ``path``."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for label, losses in curves.items():
        ax.semilogy(range(len(losses)), losses, label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (mean per sequence)")
    if title:
        ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    if len(curves) > 1:
        ax.legend()
    save_figure(fig, path)
    plt.close(fig)
