"""nbdid.figures: ``plot_x(data, *, ax=None) -> Figure`` functions.

Every figure is built in the one style of :mod:`nbdid.figures.style` (print size for one
or two journal columns, text of at least 8 pt, colour-blind-safe marks that carry
verdicts by shape as well as colour) and saved with :func:`save_figure` (PNG at 300 dpi,
PDF and SVG).  Figures are returned, never displayed, never change global rcParams and
never compute verdicts (they read them from analysis tables); a figure made from
synthetic data carries the synthetic-data banner.
"""

from nbdid.figures.assurance import plot_assurance
from nbdid.figures.balance import plot_balance
from nbdid.figures.concordance import plot_concordance
from nbdid.figures.diagnostics import plot_diagnostics, plot_ppc, plot_ppc_arviz, plot_rank
from nbdid.figures.forest import plot_forest
from nbdid.figures.specification_curve import plot_specification_curve
from nbdid.figures.style import figure_bytes, save_figure
from nbdid.figures.tipping import plot_tipping_bayes
from nbdid.figures.trajectories import plot_trajectories
from nbdid.figures.wards import plot_pair_differences, plot_ward_changes

__all__ = [
    "figure_bytes", "plot_assurance", "plot_balance", "plot_concordance", "plot_diagnostics", "plot_forest",
    "plot_pair_differences", "plot_ppc", "plot_ppc_arviz", "plot_rank", "plot_specification_curve",
    "plot_tipping_bayes", "plot_trajectories", "plot_ward_changes", "save_figure",
]
