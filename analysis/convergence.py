"""Rank-normalised split R-hat and bulk/tail effective sample sizes, vectorised.

The numbers are ArviZ 0.23's (``az.rhat(..., method="rank")``, ``az.ess(...,
method="bulk")`` and ``az.ess(..., method="tail")``, ``relative=False``; Vehtari,
Gelman, Simpson, Carpenter and Buerkner 2021), computed for every element of a
variable at once instead of in ArviZ's Python loop over elements: one sort per element
gives the average ranks of its pooled draws and (merging two sorted runs) of the folded
draws, a table gives their normal scores, one FFT gives the autocovariances of all
chains of all elements, and Geyer's initial positive and monotone sequences are taken
with array operations.  Elements are processed in chunks of about :data:`CHUNK_BYTES`
of temporaries.

ArviZ's rules are kept:

* chains are split in halves (with an odd number of draws the middle draw is dropped);
* an element with any NaN draw gives NaN; fewer than 4 draws gives NaN; R-hat of a
  single chain is NaN;
* a constant element has R-hat NaN (0/0, which ArviZ reaches with a RuntimeWarning and
  this module silently) and an ESS equal to the number of draws;
* variances are ArviZ's ``sum(x**2)/n - (sum(x)/n)**2`` with left-to-right sums (its
  numba path, taken whenever numba is installed, as it is with nutpie), and the tail
  quantiles are R's type 7 (``scipy.stats.mstats.mquantiles(alphap=1, betap=1)``),
  reproduced operation for operation so that ties fall the same way.

R-hat is ArviZ's to the bit; the ESS agree to rounding (relative differences of order
1e-14: the chain average of the autocovariance is taken before the inverse FFT and
Geyer's sums are taken over pairs); see ``tests/test_convergence.py``.

Examples
--------
>>> import numpy as np
>>> x = np.random.default_rng(0).standard_normal((4, 500, 3))
>>> rhat(x).shape, ess_bulk(x).shape
((3,), (3,))
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy.fft import next_fast_len
from scipy.special import ndtri

CHUNK_BYTES = 32 * 2**20
"""Budget of float64 temporaries per chunk of elements (bytes)."""

_TEMPORARIES = 24
"""Arrays of one element's size alive at once (estimate, with the FFT's padding)."""

_BLOM = 3 / 8
"""Fractional offset of the rank back-transformation (Blom 1958), as in ArviZ."""

_TAIL_PROB = (0.05, 0.95)
"""Quantiles whose indicator ESS is the tail ESS (the smaller of the two)."""

_MIN_DRAWS = 4
"""Fewer draws per chain than this gives NaN (ArviZ's shape check)."""


# ---------------------------------------------------------------------------------------
# public functions


def rhat(values: ArrayLike) -> np.ndarray:
    """Rank-normalised split R-hat of every element (ArviZ's ``method="rank"``).

    The larger of the split R-hat of the rank-normalised draws and of the
    rank-normalised folded draws ``|x - median(x)|``.

    Parameters
    ----------
    values
        Draws shaped ``(chain, draw, *element_dims)``.

    Returns
    -------
    numpy.ndarray
        Shaped ``element_dims`` (0-d for a scalar variable); NaN for an element with a
        NaN draw or a constant element, and everywhere with one chain or fewer than 4
        draws.
    """
    return convergence_arrays(values, ("rhat",))["rhat"]


def ess_bulk(values: ArrayLike) -> np.ndarray:
    """Bulk effective sample size of every element (ArviZ's ``method="bulk"``).

    The ESS of the rank-normalised split chains, not relative to the number of draws.

    Parameters
    ----------
    values
        Draws shaped ``(chain, draw, *element_dims)``.

    Returns
    -------
    numpy.ndarray
        Shaped ``element_dims``; NaN for an element with a NaN draw and everywhere with
        fewer than 4 draws; the number of draws for a constant element.
    """
    return convergence_arrays(values, ("ess_bulk",))["ess_bulk"]


def ess_tail(values: ArrayLike) -> np.ndarray:
    """Tail effective sample size of every element (ArviZ's ``method="tail"``).

    The smaller of the split-chain ESS of the indicators ``x <= q05`` and ``x <= q95``
    (quantiles of all draws of the element, R's type 7).

    Parameters
    ----------
    values
        Draws shaped ``(chain, draw, *element_dims)``.

    Returns
    -------
    numpy.ndarray
        Shaped ``element_dims``; NaN as for :func:`ess_bulk`.
    """
    return convergence_arrays(values, ("ess_tail",))["ess_tail"]


def convergence_arrays(values: ArrayLike,
                       which: Iterable[str] = ("rhat", "ess_bulk", "ess_tail")) -> dict[str, np.ndarray]:
    """R-hat, bulk ESS and tail ESS of every element in one pass.

    The rank normalisation of the split chains is shared by R-hat and the bulk ESS, and
    all ESS series of a chunk go through one FFT.

    Parameters
    ----------
    values
        Draws shaped ``(chain, draw, *element_dims)``; integer and boolean draws are
        taken as float64, floating draws keep their precision (as ArviZ does).
    which
        Any of ``"rhat"``, ``"ess_bulk"``, ``"ess_tail"``.

    Returns
    -------
    dict
        One array shaped ``element_dims`` per name in ``which``.
    """
    which = tuple(which)
    unknown = set(which) - {"rhat", "ess_bulk", "ess_tail"}
    if unknown:
        raise ValueError(f"unknown convergence statistics {sorted(unknown)}")
    arr = np.asarray(values)
    if arr.ndim < 2:
        raise ValueError(f"draws must be shaped (chain, draw, *element_dims), got shape {arr.shape}")
    dtype = arr.dtype if np.issubdtype(arr.dtype, np.floating) else np.dtype(np.float64)
    n_chain, n_draw = arr.shape[:2]
    element_shape = arr.shape[2:]
    n_el = int(np.prod(element_shape, dtype=np.int64))
    out = {name: np.full(n_el, np.nan) for name in which}
    if n_el == 0 or n_draw < _MIN_DRAWS or n_chain < 1:
        return {name: a.reshape(element_shape) for name, a in out.items()}
    # (a view unless more than one element dimension of a non-contiguous array)
    flat = arr if arr.ndim == 3 else arr.reshape(n_chain, n_draw, n_el)
    per_element = max(n_chain * n_draw * 8 * _TEMPORARIES, 1)
    step = max(1, CHUNK_BYTES // per_element)
    for start in range(0, n_el, step):
        stop = min(start + step, n_el)
        # elements first, each element's draws contiguous; integers taken as float64
        block = np.ascontiguousarray(np.moveaxis(flat[:, :, start:stop], 2, 0), dtype=dtype)
        for name, res in _chunk(block, which).items():
            out[name][start:stop] = res
    return {name: a.reshape(element_shape) for name, a in out.items()}


def convergence_summary(dataset: Any, var_names: Iterable[str]) -> dict[str, float]:
    """Worst R-hat and ESS over the elements of some variables of a posterior.

    Parameters
    ----------
    dataset
        An ``xarray.Dataset`` with ``chain`` and ``draw`` dimensions (a posterior).
    var_names
        The variables to check.

    Returns
    -------
    dict
        ``rhat_max`` (NaN elements ignored), ``ess_bulk_min``, ``ess_tail_min`` (NaN
        elements ignored; NaN when every element is NaN or there are none) and
        ``ess_bulk_mean``: the mean over variables of each variable's mean bulk ESS
        (NaN elements and all-NaN variables ignored), the basis of the relative ESS
        passed to PSIS-LOO.
    """
    rhats, bulks, tails, bulk_means = [], [], [], []
    for name in var_names:
        da = dataset[name].transpose("chain", "draw", ...)
        res = convergence_arrays(np.asarray(da.values))
        rhats.append(res["rhat"].ravel())
        bulks.append(res["ess_bulk"].ravel())
        tails.append(res["ess_tail"].ravel())
        bulk_means.append(_nan_reduce(res["ess_bulk"], np.nanmean))
    return {
        "rhat_max": _nan_reduce(_concat(rhats), np.nanmax),
        "ess_bulk_min": _nan_reduce(_concat(bulks), np.nanmin),
        "ess_tail_min": _nan_reduce(_concat(tails), np.nanmin),
        "ess_bulk_mean": _nan_reduce(np.asarray(bulk_means, dtype=float), np.nanmean),
    }


# ---------------------------------------------------------------------------------------
# the computation on one chunk of elements, shaped (element, chain, draw)


def _chunk(x: np.ndarray, which: tuple[str, ...]) -> dict[str, np.ndarray]:
    n_el, n_chain, n_draw = x.shape
    bad = np.isnan(x).any(axis=(1, 2))
    if bad.any():
        x = x.copy()
        x[bad] = 0
    split = _split_chains(x)
    pooled = split.reshape(n_el, -1)
    size = pooled.shape[1]
    out: dict[str, np.ndarray] = {}
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        want_z = "rhat" in which or "ess_bulk" in which
        order = np.argsort(pooled, axis=1)
        ordered = np.take_along_axis(pooled, order, axis=1)
        table = _score_table(size) if want_z else None
        z = _normal_scores(ordered, order, table).reshape(split.shape) if want_z else None
        if "rhat" in which:
            if n_chain < 2:
                out["rhat"] = np.full(n_el, np.nan)
            else:
                half = size // 2
                med = (ordered[:, half - 1] + ordered[:, half]) / 2  # np.median: size is even
                # |x - median| along the ordered draws: a decreasing run, then an
                # increasing one, which a stable (merge) sort orders in linear time
                dist = np.abs(ordered - med[:, None])
                order_d = np.argsort(dist, axis=1, kind="stable")
                z_fold = _normal_scores(np.take_along_axis(dist, order_d, axis=1),
                                        np.take_along_axis(order, order_d, axis=1), table)
                r_bulk, r_tail = _rhat(z), _rhat(z_fold.reshape(split.shape))
                # ArviZ ranks with nan_policy="omit" and _rhat returns NaN for NaN scores
                # (a folded draw is NaN when the median is infinite)
                r_tail[np.isnan(dist).any(axis=1)] = np.nan
                # Python's max(bulk, tail), as ArviZ takes it (NaN handling included)
                out["rhat"] = np.where(r_tail > r_bulk, r_tail, r_bulk)
        series = []
        if "ess_bulk" in which:
            series.append(z)
        if "ess_tail" in which:
            # the quantiles are of all draws: the split ones unless the middle draw of
            # an odd number was dropped
            raw = ordered if n_draw % 2 == 0 else x.reshape(n_el, -1)
            for prob in _TAIL_PROB:
                q = _quantile_type7(raw, prob, is_sorted=n_draw % 2 == 0)
                series.append((split <= q[:, None, None]).astype(np.float64))
        if series:
            ess = _ess(np.concatenate(series, axis=0)).reshape(len(series), n_el)
            if "ess_bulk" in which:
                out["ess_bulk"] = ess[0]
            if "ess_tail" in which:
                low, high = ess[-2], ess[-1]
                # Python's min(low, high), as ArviZ takes it
                out["ess_tail"] = np.where(high < low, high, low)
    for name in out:
        out[name][bad] = np.nan
    return out


def _split_chains(x: np.ndarray) -> np.ndarray:
    """First halves of all chains, then second halves (the middle draw of an odd
    number dropped): ``(element, 2 * chain, draw // 2)``."""
    half = x.shape[2] // 2
    return np.concatenate((x[:, :, :half], x[:, :, -half:]), axis=1)


def _score_table(size: int) -> np.ndarray:
    """Normal score of every possible average rank (1, 1.5, 2, ..., ``size``) of
    ``size`` pooled draws, indexed by ``2 * (rank - 1)``: ArviZ's ``_z_scale``
    (Blom's back-transformation, then the normal quantile)."""
    rank = np.arange(2 * size - 1) * 0.5 + 1.0
    return ndtri((rank - _BLOM) / (size - 2 * _BLOM + 1))


def _normal_scores(ordered: np.ndarray, order: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Normal scores of the average ranks of each row, in the rows' original order.

    ``ordered`` holds each row sorted ascending, ``order`` the original positions of its
    values; tied values share the mean of their ranks (``rankdata(method="average")``).
    """
    n_el, size = ordered.shape
    pos = np.arange(size)
    starts = np.empty((n_el, size), dtype=bool)
    starts[:, 0] = True
    np.not_equal(ordered[:, 1:], ordered[:, :-1], out=starts[:, 1:])
    if starts.all():  # no ties: the rank is the position + 1
        index = np.broadcast_to(2 * pos, (n_el, size))
    else:
        # each value's tie group runs from its first to its last position
        ends = np.empty_like(starts)
        ends[:, -1] = True
        ends[:, :-1] = starts[:, 1:]
        first = np.maximum.accumulate(np.where(starts, pos, 0), axis=1)
        last = np.minimum.accumulate(np.where(ends, pos, size - 1)[:, ::-1], axis=1)[:, ::-1]
        index = first + last  # 2 * (mean rank - 1)
    scores = np.empty((n_el, size))
    np.put_along_axis(scores, order, table[index], axis=1)
    return scores


def _var(x: np.ndarray, ddof: int) -> np.ndarray:
    """Variance along the last axis exactly as ArviZ's numba ``stats_variance_1d``.

    ``sum(x**2)/n - (sum(x)/n)**2`` with left-to-right sums (``cumsum``), so that even
    the rounding noise of a constant chain is ArviZ's (it decides R-hat when every
    chain is constant).
    """
    n = x.shape[-1]
    s = np.cumsum(x, axis=-1)[..., -1]
    ss = np.cumsum(x * x, axis=-1)[..., -1]
    var = ss / n - (s / n) ** 2
    return var * (n / (n - ddof))


def _rhat(z: np.ndarray) -> np.ndarray:
    """Split R-hat of ``(element, chain, draw)`` (ArviZ's ``_rhat``)."""
    n = z.shape[2]
    chain_mean = np.mean(z, axis=2)
    between = n * _var(chain_mean, ddof=1)
    within = np.mean(_var(z, ddof=1), axis=1)
    return np.sqrt((between / within + n - 1) / n)


def _quantile_type7(draws: np.ndarray, prob: float, *, is_sorted: bool) -> np.ndarray:
    """The ``prob`` quantile of each row, as ``mquantiles(alphap=1, betap=1)`` computes it
    (R's type 7; the same operations, so that a quantile equal to a draw stays equal)."""
    n = draws.shape[1]
    p = np.atleast_1d(np.asarray(prob))
    m = 1 + p * (1.0 - 1 - 1)
    aleph = n * p + m
    k = np.floor(aleph.clip(1, n - 1)).astype(int)
    gamma = (aleph - k).clip(0, 1)
    k0 = int(k[0])
    part = draws if is_sorted else np.partition(draws, (k0 - 1, k0), axis=1)
    return (1.0 - gamma[0]) * part[:, k0 - 1] + gamma[0] * part[:, k0]


def _autocov_chain_mean(x: np.ndarray) -> np.ndarray:
    """Autocovariance at every lag along the last axis, averaged over chains (axis 1).

    ArviZ's ``autocov`` (FFT zero-padded to ``next_fast_len(2 n)``, divided by ``n``);
    the chain average is taken of the power spectra, before the inverse transform.
    """
    n_chain, n = x.shape[1:]
    m = next_fast_len(2 * n, real=True)
    spec = np.fft.rfft(x - x.mean(axis=-1, keepdims=True), n=m, axis=-1)
    parts = spec.view(np.float64)  # real and imaginary parts, interleaved
    np.multiply(parts, parts, out=parts)
    summed = parts.sum(axis=1)
    power = summed[:, 0::2] + summed[:, 1::2]
    return np.fft.irfft(power / n_chain, n=m, axis=-1)[:, :n] / n


def _ess(x: np.ndarray) -> np.ndarray:
    """ESS of each series ``(series, chain, draw)`` (ArviZ's ``_ess``, not relative)."""
    n_series, n_chain, n = x.shape
    size = n_chain * n
    constant = (x.max(axis=(1, 2)) - x.min(axis=(1, 2))) < np.finfo(float).resolution
    acov = _autocov_chain_mean(x)
    mean_var = acov[:, 0] * n / (n - 1.0)
    var_plus = mean_var * (n - 1.0) / n
    if n_chain > 1:
        var_plus = var_plus + _var(np.mean(x, axis=2), ddof=1)
    rho = 1.0 - (mean_var[:, None] - acov) / var_plus[:, None]
    rho[:, 0] = 1.0

    # Geyer's initial positive sequence: ArviZ's loop runs for t = 1, 3, 5, ... while
    # t < n - 3 and the previous pair (rho[t-1] + rho[t]) is positive; iteration j
    # (t = 2j - 1) computes pair j = rho[2j] + rho[2j+1]
    n_iter = len(range(1, n - 3, 2))
    pairs = rho[:, 0:2 * n_iter + 1:2] + rho[:, 1:2 * n_iter + 2:2]  # pairs 0 .. n_iter
    if n_iter:
        positive = pairs[:, :n_iter] > 0.0
        runs = np.where(positive.all(axis=1), n_iter, np.argmin(positive, axis=1))
    else:
        runs = np.zeros(n_series, dtype=int)
    rows = np.arange(n_series)
    # after the loop: pairs 0 .. runs-1 are summed; rho[2 runs] (the last "even") is
    # added once if positive, or if its pair was stored (pair sum >= 0), else 0
    even = rho[rows, 2 * runs]
    last_pair = pairs[rows, runs]
    tail = np.where((even > 0) | (last_pair >= 0), even, 0.0)
    # Geyer's initial monotone sequence: each pair sum is capped by the previous one
    capped = np.minimum.accumulate(pairs, axis=1)
    csum = np.concatenate((np.zeros((n_series, 1)), np.cumsum(capped, axis=1)), axis=1)
    tau = -1.0 + 2.0 * csum[rows, runs] + tail
    tau = np.maximum(tau, 1 / np.log10(size))
    ess = size / tau
    ess[np.isnan(rho[:, 1])] = np.nan
    ess[constant] = size
    return ess


def _concat(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts) if parts else np.empty(0)


def _nan_reduce(a: np.ndarray, fn: Callable[[np.ndarray], Any]) -> float:
    """``fn`` (a NaN-ignoring reduction) of ``a``; NaN, without a warning, when every
    value is NaN or there are none."""
    a = np.asarray(a, dtype=float)
    if a.size == 0 or np.isnan(a).all():
        return float("nan")
    return float(fn(a))
