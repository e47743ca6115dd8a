"""Likelihood families: one object per family, registered by name.

>>> from nbdid.families import get_family
>>> fam = get_family("poisson")
>>> fam.link, fam.ratio_scale
('log', 'rate_ratio')

Every module asks the family object instead of branching on the family's name (see
:mod:`nbdid.families.base`).  To add a family, write a :class:`~nbdid.families.base.Family`
subclass in its own module and add it to :data:`FAMILIES` below.
"""

from __future__ import annotations

from dataclasses import dataclass

from nbdid.errors import InputError
from nbdid.families.base import ColumnSpec, Family, PooledStats
from nbdid.families.binomial import BINOMIAL
from nbdid.families.gaussian import GAUSSIAN
from nbdid.families.poisson import POISSON
from nbdid.families.price import PRICE
from nbdid.registry import INDICATORS

FAMILIES: dict[str, Family] = {f.name: f for f in (BINOMIAL, POISSON, PRICE, GAUSSIAN)}
"""Registered families by name."""

ALIASES: dict[str, tuple[str, str]] = {"negbin": ("poisson", "negbin")}
"""Family names that stand for a registered family with an overdispersion choice."""

FAMILY_CHOICES: tuple[str, ...] = (*FAMILIES, *ALIASES)
"""Everything ``--family`` accepts."""


def base_name(name: str) -> str:
    """The registered family an alias stands for (``negbin`` -> ``poisson``); other
    names unchanged."""
    return ALIASES[name][0] if name in ALIASES else name


def get_family(name: str | Family) -> Family:
    """The registered family called ``name`` (a :class:`Family` is returned as it is).

    Raises
    ------
    InputError
        If no family has that name.
    """
    if isinstance(name, Family):
        return name
    fam = FAMILIES.get(str(name))
    if fam is None:
        if str(name) in ALIASES:
            return FAMILIES[ALIASES[str(name)][0]]
        raise InputError(f"unknown family '{name}' (use {', '.join(FAMILY_CHOICES)})")
    return fam


@dataclass(frozen=True)
class FamilyChoice:
    """A resolved ``--family``: the family and the overdispersion it implies, if any."""

    family: Family
    overdispersion: str | None = None

    @property
    def name(self) -> str:
        """The family's name."""
        return self.family.name


def resolve_family(indicator: str, family: str | Family | None = None, *,
                   columns_present=None) -> FamilyChoice:
    """The one family resolver: an explicit choice, else the registry's, else the columns'.

    Parameters
    ----------
    indicator
        Indicator key.
    family
        An explicit family name (``--family``; ``negbin`` means Poisson with negative
        binomial overdispersion) or object.
    columns_present
        For keys not in the registry and no explicit family: the panel columns that hold
        values for the indicator's rows; a family is inferred when exactly one family's
        required columns are all present and the others' are not.

    Raises
    ------
    InputError
        If the family is unknown, or cannot be decided for a key outside the registry.
    """
    if family is not None:
        if isinstance(family, Family):
            return FamilyChoice(family)
        name = str(family)
        if name in ALIASES:
            base, od = ALIASES[name]
            return FamilyChoice(FAMILIES[base], od)
        return FamilyChoice(get_family(name))
    if indicator in INDICATORS:
        return FamilyChoice(FAMILIES[INDICATORS[indicator].family])
    if columns_present is not None:
        present = set(columns_present)
        fits = [f for f in FAMILIES.values() if set(f.required) <= present]
        # a family whose columns are a superset of another's wins only alone
        if len(fits) == 1:
            return FamilyChoice(fits[0])
    raise InputError(
        f"indicator '{indicator}' is not in the registry; give its family "
        f"({', '.join(FAMILY_CHOICES)}), e.g. --family {indicator}=poisson"
    )


def family_columns() -> dict[str, tuple[ColumnSpec, tuple[str, ...]]]:
    """Every value column some registered family uses, in registration order, with the
    families that use it: ``{name: (spec, families)}``.

    Raises
    ------
    TypeError
        If two families declare the same column with different dtypes.
    """
    out: dict[str, tuple[ColumnSpec, tuple[str, ...]]] = {}
    for f in FAMILIES.values():
        for spec in f.columns:
            if spec.name in out:
                first, users = out[spec.name]
                if first.dtype != spec.dtype:
                    raise TypeError(f"column {spec.name!r} is {first.dtype} for {users[0]} but "
                                    f"{spec.dtype} for {f.name}")
                if spec.description != first.description:
                    first = ColumnSpec(first.name, first.dtype,
                                       f"{first.description}; {f.name}: {spec.description}", first.minimum)
                out[spec.name] = (first, (*users, f.name))
            else:
                out[spec.name] = (spec, (f.name,))
    return out


__all__ = ["ALIASES", "FAMILIES", "FAMILY_CHOICES", "ColumnSpec", "Family", "FamilyChoice",
           "PooledStats", "base_name", "family_columns", "get_family", "resolve_family"]
