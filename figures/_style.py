"""Shared styling helpers for nbdid figures (no global rcParams changes)."""

from __future__ import annotations

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from nbdid.provenance import SYNTHETIC_NOTICE

NBI_COLOUR = "#1b7837"
BENCHMARK_COLOUR = "#762a83"
REPORT_COLOUR = "#7f7f7f"
FAIL_COLOUR = "#d73027"


def new_axes(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    """Return ``(figure, axes)``: the given axes' figure, or a new figure.

    A new figure is created with :class:`matplotlib.figure.Figure` directly, so it is
    not registered with pyplot (no global state, nothing to close).
    """
    if ax is not None:
        return ax.figure, ax
    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.add_subplot()


def mark_synthetic(fig: Figure, synthetic: bool) -> None:
    """Stamp the synthetic-data notice on a figure made from the synthetic panel."""
    if synthetic:
        head, _, tail = SYNTHETIC_NOTICE.partition(": ")
        fig.suptitle(
            f"{head}\n{tail}" if tail else head,
            color=FAIL_COLOUR, fontsize=8, fontweight="bold",
        )


def fmt_number(x: float, scale: float) -> str:
    """Format ``x`` with decimals suited to the magnitude ``scale`` of its row."""
    scale = abs(scale)
    d = 0 if scale >= 100 else 1 if scale >= 10 else 2
    return f"{x:,.{d}f}"


def mark_failed(ax: Axes, reason: str) -> None:
    """Stamp a failed diagnostics gate on an axes."""
    ax.text(
        0.5, 0.5, f"DIAGNOSTICS FAILED\n{reason}", transform=ax.transAxes, ha="center",
        va="center", fontsize=9, color=FAIL_COLOUR, alpha=0.6, fontweight="bold", wrap=True,
    )
