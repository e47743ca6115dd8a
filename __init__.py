"""nbdid: Bayesian re-analysis of matched-area evaluations of neighbourhood initiatives.

The package re-analyses *Everybody Needs Good Neighbourhoods 2* (Local Trust, 3ni,
Shared Intelligence and OCSI, July 2025), which compares 29 wards with Big Local /
neighbourhood-based initiatives (NBI) with 29 matched benchmark wards on seven
indicators.  Sub-packages:

``nbdid.data_prep``
    the report's published tables, ward panels (schema, loaders, synthetic default).
``nbdid.models``
    hierarchical Bayesian difference-in-differences models, one module per family.
``nbdid.analysis``
    replication of the report's method, forensics, estimands and comparisons
    (functions return DataFrames / xarray objects, never draw).
``nbdid.figures``
    plotting functions ``plot_x(data, *, ax=None) -> Figure``.
"""

from nbdid.registry import INDICATOR_KEYS, INDICATORS, get_indicator

__version__ = "0.1.0"
__all__ = ["INDICATORS", "INDICATOR_KEYS", "get_indicator", "__version__"]
