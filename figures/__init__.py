"""nbdid.figures: ``plot_x(data, *, ax=None) -> Figure`` functions.

Figures are returned, never displayed, and never change global rcParams; a figure made
from the synthetic default panel carries the synthetic-data notice.
"""

from nbdid.figures.balance import plot_balance
from nbdid.figures.concordance import plot_concordance
from nbdid.figures.diagnostics import plot_diagnostics
from nbdid.figures.forest import plot_forest
from nbdid.figures.specification_curve import plot_specification_curve
from nbdid.figures.tipping import plot_tipping_bayes
from nbdid.figures.trajectories import plot_trajectories

__all__ = ["plot_balance", "plot_concordance", "plot_diagnostics", "plot_forest", "plot_specification_curve", "plot_tipping_bayes", "plot_trajectories"]
