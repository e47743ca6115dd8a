"""The indicator registry: the one place that says what each indicator is.

Every module (data loaders, the synthetic generator, the models, the replication,
the figures) looks indicators up here instead of hard-coding units, families or
periods.  The keys are fixed and match the report's seven indicators.

Examples
--------
>>> from nbdid.registry import get_indicator
>>> ind = get_indicator("crime")
>>> ind.family, ind.multiplier, ind.lower_is_better
('poisson', 1000.0, True)
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Literal

from nbdid.errors import InputError

Family = Literal["binomial", "poisson", "price"]
"""Likelihood family of an indicator.

``binomial``
    a count out of a known number of trials (people); the value is a percentage.
``poisson``
    a count of events with an exposure (people or households); the value is a rate.
``price``
    a continuous positive quantity (property price in pounds), modelled on the log scale.
"""

GROUPS: tuple[str, str] = ("nbi", "benchmark")
"""Group codes used everywhere: the treated Big Local / NBI wards and their benchmarks."""

GROUP_LABELS: dict[str, str] = {"nbi": "Big Local/NBI", "benchmark": "Benchmark"}


@dataclass(frozen=True)
class Indicator:
    """One indicator of the report and how nbdid treats it.

    Attributes
    ----------
    key
        Stable identifier used in files, CLI options and outputs.
    title
        Human title, as in the report's Table 1.
    source
        Publisher of the underlying data (report Table 4).
    unit
        Unit of the published value, e.g. ``"%"`` or ``"per 1,000 population"``.
    short_unit
        Compact unit for axis labels and tables.
    multiplier
        Factor turning a count/exposure ratio into the published unit
        (100 for percentages, 1,000 or 10,000 for rates, 1 for pounds).
    family
        Likelihood family (see :data:`Family`).
    denominator
        What the exposure / number of trials counts (``"transactions"`` for prices).
    denominator_key
        Short key of the denominator, shared by indicators with the same denominator.
    periods
        The report's two period labels, base first.
    period_description
        The periods as the report describes them in words.
    lower_is_better
        Whether a fall in the indicator is an improvement.
    decimals
        Decimal places the report prints the value with (its rounding).
    half_width_decimals
        Decimal places the report prints the 95% CI half-width with.
    report_table
        Number of the report's A/B tables for this indicator (5 to 11).
    report_chart
        Number of the report's chart for this indicator (1 to 7).
    """

    key: str
    title: str
    source: str
    unit: str
    short_unit: str
    multiplier: float
    family: Family
    denominator: str
    denominator_key: str
    periods: tuple[str, str]
    period_description: str
    lower_is_better: bool
    decimals: int
    half_width_decimals: int
    report_table: int
    report_chart: int

    def better(self, change: float) -> bool:
        """Whether a change (later minus earlier, or NBI minus benchmark) is an improvement."""
        return change < 0 if self.lower_is_better else change > 0

    def format_value(self, value: float) -> str:
        """Format a value in the indicator's unit, with the report's rounding."""
        if self.unit == "£":
            return f"£{value:,.0f}"
        if self.unit == "%":
            return f"{value:.{self.decimals}f}%"
        return f"{value:,.{self.decimals}f}"


INDICATORS: dict[str, Indicator] = {
    ind.key: ind
    for ind in (
        Indicator(
            key="out_of_work_benefits",
            title="Out-of-Work Benefits",
            source="Department for Work and Pensions (DWP)",
            unit="%",
            short_unit="% of working-age",
            multiplier=100.0,
            family="binomial",
            denominator="working-age population (16-64)",
            denominator_key="working_age",
            periods=("2011", "2021"),
            period_description="2011 and 2021",
            lower_is_better=True,
            decimals=1,
            half_width_decimals=1,
            report_table=5,
            report_chart=1,
        ),
        Indicator(
            key="children_low_income",
            title="Children in Low-Income Households",
            source="Department for Work and Pensions (DWP)",
            unit="%",
            short_unit="% of children 0-19",
            multiplier=100.0,
            family="binomial",
            denominator="children aged 0-19",
            denominator_key="children_0_19",
            periods=("2014", "2021"),
            period_description="2014 and 2021 (financial years 2014/15 and 2020/21)",
            lower_is_better=True,
            decimals=1,
            half_width_decimals=1,
            report_table=6,
            report_chart=2,
        ),
        Indicator(
            key="crime",
            title="Overall Crime Rate",
            source="Police UK",
            unit="per 1,000 population",
            short_unit="per 1,000 pop.",
            multiplier=1000.0,
            family="poisson",
            denominator="total population",
            denominator_key="population",
            periods=("2011", "2021"),
            period_description="financial years 2010/11 and 2020/21",
            lower_is_better=True,
            decimals=1,
            half_width_decimals=1,
            report_table=7,
            report_chart=3,
        ),
        Indicator(
            key="burglary",
            title="Burglary Rate",
            source="Police UK",
            unit="per 1,000 households",
            short_unit="per 1,000 households",
            multiplier=1000.0,
            family="poisson",
            denominator="households",
            denominator_key="households",
            periods=("2011", "2021"),
            period_description="financial years 2010/11 and 2020/21",
            lower_is_better=True,
            decimals=1,
            half_width_decimals=1,
            report_table=8,
            report_chart=4,
        ),
        Indicator(
            key="criminal_damage",
            title="Criminal Damage",
            source="Police UK",
            unit="per 1,000 population",
            short_unit="per 1,000 pop.",
            multiplier=1000.0,
            family="poisson",
            denominator="total population",
            denominator_key="population",
            periods=("2011", "2021"),
            period_description="financial years 2010/11 and 2020/21",
            lower_is_better=True,
            decimals=1,
            half_width_decimals=1,
            report_table=9,
            report_chart=5,
        ),
        Indicator(
            key="property_price",
            title="Average Property Price",
            source="HM Land Registry Price Paid Data",
            unit="£",
            short_unit="£",
            multiplier=1.0,
            family="price",
            denominator="transactions (sales)",
            denominator_key="transactions",
            periods=("2007-2013", "2018-2024"),
            period_description="Dec 2007 to Nov 2013 and Dec 2018 to Nov 2024",
            lower_is_better=False,
            decimals=0,
            half_width_decimals=0,
            report_table=10,
            report_chart=6,
        ),
        Indicator(
            key="business_units",
            title="Business Activity",
            source="Office for National Statistics (ONS), UK Business Counts (IDBR)",
            unit="per 10,000 working-age population",
            short_unit="per 10,000 working-age",
            multiplier=10000.0,
            family="poisson",
            denominator="working-age population (16-64)",
            denominator_key="working_age",
            periods=("2011", "2021"),
            period_description="2011 and 2021",
            lower_is_better=False,
            decimals=1,
            half_width_decimals=1,
            report_table=11,
            report_chart=7,
        ),
    )
}

INDICATOR_KEYS: tuple[str, ...] = tuple(INDICATORS)


def get_indicator(key: str) -> Indicator:
    """Return the registry entry for ``key``.

    Raises
    ------
    InputError
        If ``key`` is not one of :data:`INDICATOR_KEYS` (with a suggestion).
    """
    try:
        return INDICATORS[key]
    except KeyError:
        close = difflib.get_close_matches(str(key), INDICATOR_KEYS, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise InputError(
            f"unknown indicator '{key}'{hint}; known indicators: {', '.join(INDICATOR_KEYS)}"
        ) from None


def resolve_indicators(keys: list[str] | tuple[str, ...] | None) -> tuple[Indicator, ...]:
    """Resolve a list of keys (``None`` or empty means all seven) to registry entries."""
    if not keys:
        return tuple(INDICATORS.values())
    return tuple(get_indicator(k) for k in keys)
