"""nbdid.figures: ``plot_x(data, *, ax=None) -> Figure`` functions.

Figures are returned, never displayed, and never change global rcParams; a figure made
from the synthetic default panel carries the synthetic-data notice.
"""

from nbdid.figures.diagnostics import plot_diagnostics
from nbdid.figures.forest import plot_forest
from nbdid.figures.trajectories import plot_trajectories

__all__ = ["plot_diagnostics", "plot_forest", "plot_trajectories"]
