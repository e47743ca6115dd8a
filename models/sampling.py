"""Sampling: nutpie by default, compiled once per model structure; PyMC as fallback.

A :class:`CompiledModelCache` keeps one compiled model per *family + model structure +
dimension sizes*.  Fitting another indicator (or new data) with the same key swaps the
``pm.Data`` values with ``compiled.with_data(...)`` and samples again without
recompiling.  nutpie cannot change the number of parameters of a compiled model (for
example a different number of wards), so dimension sizes are part of the key and a
new size compiles a new model.

Examples
--------
>>> cache = CompiledModelCache()                                    # doctest: +SKIP
>>> idata = cache.sample(design, model_cfg, sampler_cfg)           # compiles
>>> idata2 = cache.sample(design2, model_cfg, sampler_cfg)         # same shapes: no compile
>>> cache.compile_count                                             # doctest: +SKIP
1
"""

from __future__ import annotations

import dataclasses
import gc
import os
import sys
import time
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from nbdid.errors import ModelError
from nbdid.models.compile_cache import persistent_compile
from nbdid.models.design import Design, model_data, resolve_model_config
from nbdid.models.model import build_model
from nbdid.models.progress import animated, compiling
from nbdid.runtime import interruption, raise_if_interrupted, signals_seen

if TYPE_CHECKING:
    import xarray as xr
    from arviz import InferenceData

    from nbdid.config import ModelConfig, SamplerConfig


def structure_key(design: Design, model_cfg: ModelConfig) -> tuple:
    """Cache key: family, everything in the model config, event-study reference, shapes."""
    return (
        design.family.name,
        design.pair_effects,
        design.event_study,
        design.reference_period,
        tuple(int(x) for x in design.period_post),
        design.parameterization,
        design.change_parameterization,
        design.pair_parameterization,
        # the resolved structure; prior *distributions* only (their parameters are
        # pm.Data, so a compiled model is refitted under other prior scales)
        *_resolved_structure(design, model_cfg),
        design.shape_key(),
    )


def _resolved_structure(design: Design, model_cfg: ModelConfig) -> tuple:
    cfg = resolve_model_config(design, model_cfg)
    priors = tuple(getattr(cfg.priors, f.name).dist for f in dataclasses.fields(cfg.priors))
    return (cfg.ward_effects, cfg.ward_change, cfg.group_change_sd, cfg.ward_corr, cfg.overdispersion,
            cfg.price_likelihood, cfg.lkj_eta, cfg.mean_level, priors, design.structure_key())


def _log(msg: str, quiet: bool) -> None:
    if not quiet:
        print(f"nbdid: {msg}", file=sys.stderr, flush=True)


@dataclass
class _Entry:
    model: Any
    compiled: Any = None
    data: dict = field(default_factory=dict)


@dataclass
class CompiledModelCache:
    """Compiled models keyed by family + structure + shapes, reused across fits.

    Attributes
    ----------
    compile_count
        Number of nutpie compilations done by this cache (for tests and benchmarks),
        whether compiled afresh or loaded from the disk cache.
    quiet
        Suppress progress lines on stderr.
    last_timing
        Of the last :meth:`sample`: ``compile_seconds`` (building and compiling the
        model; 0 when this cache held it), ``sampling_seconds`` (the sampler alone),
        ``compiled`` (``"memory"``, ``"disk"``: nutpie's callbacks loaded from the
        persistent cache of :mod:`nbdid.models.compile_cache`, or ``"fresh"``).
    """

    compile_count: int = 0
    quiet: bool = True
    last_timing: dict = field(default_factory=dict, repr=False)
    _entries: dict = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self._entries)

    def model_for(self, design: Design, model_cfg: ModelConfig, *, set_data: bool = True):
        """The (cached) PyMC model for ``design``'s structure, with ``design``'s data set.

        ``set_data=False`` skips ``pm.set_data`` on a cached model.  Keep it on before
        sampling: nutpie swaps the data into its compiled copy with ``with_data``, but
        takes its initial points from the PyMC model.
        """
        model_cfg = resolve_model_config(design, model_cfg)
        key = structure_key(design, model_cfg)
        entry = self._entries.get(key)
        if entry is None:
            entry = _Entry(build_model(design, model_cfg))
            self._entries[key] = entry
        elif set_data:
            # imported here: PyMC takes seconds to import; only building a model needs it
            import pymc as pm

            with entry.model:
                pm.set_data(model_data(design, model_cfg), coords=design.coords)
        entry.data = model_data(design, model_cfg)
        return entry, key

    @staticmethod
    def _data(design: Design, model_cfg: ModelConfig) -> dict[str, Any]:
        return model_data(design, resolve_model_config(design, model_cfg))

    def sample(self, design: Design, model_cfg: ModelConfig, sampler_cfg: SamplerConfig) -> Any:
        """Sample the posterior of ``design`` (compiling only for a new key).

        Parameters
        ----------
        design
            Model inputs.
        model_cfg, sampler_cfg
            :class:`nbdid.config.ModelConfig` and :class:`nbdid.config.SamplerConfig`.

        Returns
        -------
        arviz.InferenceData
            With ``posterior``, ``sample_stats`` and ``observed_data`` groups, coords
            labelled with ``design``'s wards, pairs and periods.
        """
        # the PyMC graph gets the new data too: nutpie draws its initial points from it,
        # and skipping this (0.6 s) made a refit differ from a fresh fit with the same seed
        t_build = time.perf_counter()
        new = structure_key(design, resolve_model_config(design, model_cfg)) not in self._entries
        entry, key = self.model_for(design, model_cfg)
        timing = {"compile_seconds": time.perf_counter() - t_build if new else 0.0,
                  "sampling_seconds": 0.0, "compiled": "memory"}
        self.last_timing = timing
        if sampler_cfg.backend == "nutpie":
            idata = self._sample_nutpie(entry, design, sampler_cfg, key=key, timing=timing)
        elif sampler_cfg.backend == "pymc":
            t0 = time.perf_counter()
            idata = self._sample_pymc(entry, sampler_cfg)
            timing["sampling_seconds"] = time.perf_counter() - t0
        else:
            raise ModelError(f"unknown backend '{sampler_cfg.backend}' (use nutpie or pymc)")
        check_complete(idata, sampler_cfg)
        idata = _without_transformed(idata)
        storage_precision(idata, groups=("posterior", "sample_stats"))
        how = {"memory": "", "disk": f"; compiled in {timing['compile_seconds']:.1f} s from the disk cache",
               "fresh": f"; compiled in {timing['compile_seconds']:.1f} s"}.get(timing["compiled"], "")
        _log(
            f"{design.indicator}: sampled {sampler_cfg.chains} x {sampler_cfg.draws} draws "
            f"in {timing['sampling_seconds']:.1f} s ({sampler_cfg.backend}{how})",
            self.quiet,
        )
        out = relabel(idata, design)
        out.posterior.attrs["nbdid_free_vars"] = ",".join(_free_names(entry.model, out.posterior))
        return out

    refit = sample

    def _sample_nutpie(self, entry: _Entry, design: Design, cfg: SamplerConfig, *, key: tuple = (),
                       timing: dict | None = None) -> Any:
        # imported here: nutpie loads numba; only sampling needs it
        import nutpie

        timing = timing if timing is not None else {}
        data = entry.data
        if entry.compiled is None:
            t0 = time.perf_counter()
            seen = signals_seen()
            with compiling(f"{design.indicator}: compiling the {design.family.name} model",
                           quiet=self.quiet), persistent_compile(repr(key)) as disk:
                entry.compiled = nutpie.compile_pymc_model(entry.model, var_names=stored_names(entry.model),
                                                           **disk["kwargs"])
            if signals_seen() > seen:
                # Ctrl-C/SIGTERM during the compilation, swallowed by a library (Numba and
                # PyTensor catch exceptions while compiling): stop here, not after sampling
                entry.compiled = None
                raise interruption(f"{design.indicator}: interrupted while compiling")
            self.compile_count += 1
            # a compile leaves ~0.4 s of cyclic garbage (PyTensor graphs); collect it
            # here, with the compile, instead of in the middle of the next refit
            gc.collect()
            timing["compile_seconds"] = timing.get("compile_seconds", 0.0) + time.perf_counter() - t0
            timing["compiled"] = "disk" if disk["hits"] and not disk["misses"] else "fresh"
        # a signal a library swallowed earlier (building the model, loading it) ends the
        # command here, not after sampling
        raise_if_interrupted(f"{design.indicator}: interrupted before sampling")
        t_sample = time.perf_counter()
        # containers the model's log density does not use (e.g. ``post`` in an
        # event study) are not part of the compiled model
        shared = entry.compiled.shared_data
        compiled = entry.compiled.with_data(**{k: v for k, v in data.items() if k in shared})
        # non-blocking + wait: nutpie's blocking call catches Ctrl-C (and SIGTERM, which
        # nbdid turns into an exception) and returns the draws made so far; here the
        # interrupt propagates and the sampler's threads are cancelled and joined
        sampler = nutpie.sample(
            compiled,
            draws=cfg.draws,
            tune=cfg.tune,
            chains=cfg.chains,
            cores=min(cfg.chains, os.cpu_count() or 1),
            seed=cfg.seed,
            target_accept=cfg.target_accept,
            low_rank_modified_mass_matrix=cfg.mass_matrix == "low_rank",
            save_warmup=False,
            # nutpie's bar (draws per chain) in a terminal only
            progress_bar=animated(self.quiet),
            blocking=False,
            # the arrow trace, converted here (posterior draws of kept variables only)
            return_raw_trace=True,
        )
        try:
            trace = sampler.wait()
        except BaseException:
            sampler.cancel()
            raise
        finally:
            timing["sampling_seconds"] = time.perf_counter() - t_sample
        del sampler
        draws, stats = trace.get_arrow_trace()
        del trace
        later = recomputed_names(entry.model)
        free = tuple(rv.name for rv in entry.model.free_RVs) if later else ()
        idata = trace_to_idata(draws, stats, coords=entry.compiled.coords, keep=free)
        del draws, stats  # nutpie's trace (its buffers) goes here
        if later:
            # imported here: PyMC takes seconds to import; only building a model needs it
            import pymc as pm

            idata.posterior = pm.compute_deterministics(
                idata.posterior, var_names=later, model=entry.model, merge_dataset=True,
                progressbar=False)
        return idata

    def _sample_pymc(self, entry: _Entry, cfg: SamplerConfig) -> Any:
        # imported here: PyMC takes seconds to import; only building a model needs it
        import pymc as pm

        raise_if_interrupted("interrupted before sampling")
        seen = signals_seen()
        try:
            with entry.model:
                return pm.sample(
                    draws=cfg.draws,
                    tune=cfg.tune,
                    chains=cfg.chains,
                    cores=min(cfg.chains, os.cpu_count() or 1),
                    target_accept=cfg.target_accept,
                    random_seed=cfg.seed,
                    progressbar=False,
                    compute_convergence_checks=False,
                    idata_kwargs={"log_likelihood": False},
                )
        except Exception as err:
            # pm.sample swallows Ctrl-C/SIGTERM; interrupted during warm-up it then fails
            # with "Not enough samples to build a trace": an interruption, not an error
            if signals_seen() > seen or "Not enough samples" in str(err):
                raise interruption("sampling stopped during warm-up; nothing was saved") from None
            raise


RECOMPUTE_WARDS = 1000
"""Above this many wards, the deterministics with a ``ward`` dimension (``ward_level``,
``ward_change``, ...) are computed from the free parameters' draws after sampling
(:func:`recomputed_names`) instead of being stored by nutpie."""


def stored_names(model: Any) -> list[str]:
    """The variables nutpie stores for each draw besides the free parameters: every
    deterministic and constrained value except ``ward_effect`` when it is not needed
    and those :func:`recomputed_names` computes after sampling.

    ``ward_effect`` (a ward's level minus its group, pair and covariate mean) is a
    re-expression of ``ward_level`` (:data:`REEXPRESSIONS`), dropped after sampling
    unless the model has a level-change correlation (``ward_corr``).  nutpie keeps
    every draw of every stored variable in memory until sampling ends, warm-up
    included (and, in nutpie 0.16, each draw's position and gradient too), so every
    vector of the length of the wards left out saves 0.34 GB of a 7,177-ward fit's
    trace (6,000 iterations of 4 chains).
    """
    names = [v.name for v in model.unobserved_value_vars]
    if "ward_corr" not in names:
        names = [n for n in names if n != "ward_effect"]
    later = set(recomputed_names(model))
    return [n for n in names if n not in later]


def recomputed_names(model: Any) -> list[str]:
    """Deterministics computed after sampling (``pm.compute_deterministics``) instead of
    stored: those with a ``ward`` dimension, in a model of more than
    :data:`RECOMPUTE_WARDS` wards (none in a study-sized one, whose refits stay free of
    the extra pass)."""
    if len(model.coords.get("ward", ()) or ()) <= RECOMPUTE_WARDS:
        return []
    dims = model.named_vars_to_dims
    corr = "ward_corr" in model.named_vars
    return [d.name for d in model.deterministics
            if "ward" in (dims.get(d.name) or ()) and (corr or d.name != "ward_effect")]


_SKIPPED_STATS = ("gradient", "unconstrained_draw", "mass_matrix_inv", "mass_matrix_eigvals",
                  "mass_matrix_stds", "divergence_start", "divergence_end", "divergence_momentum",
                  "divergence_start_gradient")
"""Per-draw sampler statistics that nutpie records whatever its ``store_*`` settings say
and that nbdid does not keep (each a vector of the length of the parameter vector)."""


def _dropped(name: str, names: list[str]) -> bool:
    """Whether a sampled variable is left out of the posterior (see
    :func:`_without_transformed`): unconstrained copies and re-expressions."""
    if name.endswith("__") and any(name.startswith(f"{n}_") for n in names if not n.endswith("__")):
        return True
    target = REEXPRESSIONS.get(name)
    if target is None or target not in names:
        return False
    return not (name == "ward_effect" and "ward_corr" in names)


def trace_to_idata(draw_batches: list[Any], stat_batches: list[Any], *,
                   coords: dict[str, Any], keep: tuple[str, ...] = ()) -> Any:
    """InferenceData of the post-warm-up draws of nutpie's raw (Arrow) trace.

    nutpie's own conversion turns every stored column of every draw into NumPy, the
    warm-up included, before dropping the warm-up, and keeps variables nbdid drops at
    once; on a national model that doubled the peak memory.  Here only the posterior
    rows of the variables kept (:func:`_dropped`) and of the small sampler statistics
    are converted, one column at a time; the trace's own buffers are released by the
    caller when this returns.

    Parameters
    ----------
    draw_batches, stat_batches
        One Arrow record batch per chain (``PyTrace.get_arrow_trace()``).
    coords
        The compiled model's coordinates.
    keep
        Variables converted even if they would be dropped (the free parameters that
        :func:`recomputed_names`' deterministics are computed from).

    Returns
    -------
    arviz.InferenceData
        ``posterior`` and ``sample_stats`` (dims ``chain, draw, ...``).
    """
    # imported here: pyarrow, xarray and ArviZ load only when a fit is converted
    import arviz as az
    import pandas as pd
    import pyarrow as pa

    n_chains = len(draw_batches)
    posterior_rows = []
    for stat in stat_batches:
        tuning = pa.array(stat.column("tuning")).to_numpy(zero_copy_only=False)
        first = int(tuning.sum())
        posterior_rows.append((first, int(stat.num_rows) - first))
    n_draws = max(n for _, n in posterior_rows)

    def convert(batches: list[Any], skip) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        names = [str(f.name) for f in batches[0].schema]
        for name in names:
            if skip(name, names):
                continue
            meta = batches[0].schema.field(name).metadata or {}
            item_dims = [d for d in meta.get(b"dims", b"").decode().split(",") if d]
            shape = [int(x) for x in meta.get(b"shape", b"").decode().split(",") if x]
            data = None
            for chain, (batch, (first, n)) in enumerate(zip(batches, posterior_rows, strict=True)):
                col = pa.array(batch.column(name)).slice(first, n)
                if isinstance(col, (pa.ListArray, pa.LargeListArray)):
                    col = col.flatten()
                values = col.to_numpy(zero_copy_only=False)
                if data is None:
                    fill = np.nan if values.dtype.kind == "f" else 0
                    data = np.full((n_chains, n_draws, *shape), fill, dtype=values.dtype)
                data[chain, :n] = values.reshape((n, *shape))
            out[name] = data
            if item_dims:
                dims[name] = item_dims
        return out

    dims: dict[str, list[str]] = {}
    posterior = convert(draw_batches, lambda name, names: name not in keep and _dropped(name, names))
    stats = convert(stat_batches, lambda name, names: name in _SKIPPED_STATS)
    # as nutpie's own conversion: ArviZ's from_dict wraps the arrays (no copy)
    return az.from_dict(posterior, sample_stats=stats, dims=dims,
                        coords={k: pd.Index(v) for k, v in coords.items()})


def check_complete(idata: InferenceData, sampler_cfg: SamplerConfig) -> None:
    """Refuse a posterior with fewer chains or draws than asked for.

    PyMC's ``pm.sample`` (and nutpie's blocking sampler) answer Ctrl-C by returning
    the draws made so far; such a posterior is never a result.

    Raises
    ------
    KeyboardInterrupt
        :func:`nbdid.runtime.interruption` (:class:`~nbdid.runtime.Terminated` after
        SIGTERM), saying how far sampling got.
    """
    post = getattr(idata, "posterior", None)
    sizes = dict(post.sizes) if post is not None else {}
    chains, draws = int(sizes.get("chain", 0)), int(sizes.get("draw", 0))
    if chains != sampler_cfg.chains or draws != sampler_cfg.draws:
        raise interruption(
            f"sampling stopped early: {chains} chain(s) x {draws} draws of "
            f"{sampler_cfg.chains} x {sampler_cfg.draws}; nothing was saved"
        )


STORAGE_RESOLUTION = 0.01
"""Each stored variable resolves this fraction of its posterior SD (:func:`storage_precision`)."""


def round_mantissa(values: np.ndarray, bits: int | np.ndarray) -> np.ndarray:
    """Round float values to ``bits`` mantissa bits (of float32's 23; round to nearest,
    ties to even), returned as float64.  ``bits`` may be an array broadcasting against
    ``values`` (e.g. one per element of a variable).  Non-finite values are kept.

    The zeroed low bits cost nothing in the compressed file (byte shuffle + zlib): this
    is the "bit rounding" of Kloewer et al. (2021, Nature Computational Science 1,
    713-724) that netCDF-C offers as ``quantize_mode = "BitRound"``.
    """
    f32 = np.asarray(values, dtype=np.float64).astype(np.float32)
    drop = np.clip(23 - np.asarray(bits, dtype=np.int64), 0, 23).astype(np.uint32)
    drop = np.broadcast_to(drop, f32.shape)
    u = f32.view(np.uint32)
    one = np.uint32(1)
    half = np.where(drop > 0, (one << np.maximum(drop, one) - one) - one, 0).astype(np.uint32)
    odd = np.where(drop > 0, (u >> drop) & one, 0).astype(np.uint32)
    mask = ((np.uint32(0xFFFFFFFF) >> drop) << drop).astype(np.uint32)
    rounded = ((u + half + odd) & mask).view(np.float32)
    return np.where(np.isfinite(f32), rounded, f32).astype(np.float64)


def storage_bits(values: np.ndarray, resolution: float = STORAGE_RESOLUTION) -> np.ndarray:
    """Mantissa bits each element of a variable keeps so that rounding moves none of its
    draws by more than ``resolution / 2`` of that element's posterior SD.

    ``values`` has dims ``(chain, draw, ...)``; returns one count per element (dims
    ``...``), from 1 to 23.  An element without spread keeps float32's 23 bits.
    """
    a = np.asarray(values, dtype=np.float64)
    if a.ndim < 2:
        return np.asarray(23)
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an element never finite: NaN
        clean = np.where(np.isfinite(a), a, np.nan)
        sd = np.nanstd(clean, axis=(0, 1))
        top = np.nanmax(np.abs(clean), axis=(0, 1))
        # b-bit numbers in [2**e, 2**(e+1)) are 2**(e - b) apart; e = the exponent of top
        need = np.ceil(np.floor(np.log2(top)) - np.log2(resolution * sd))
    ok = np.isfinite(need) & (sd > 0) & (top > 0)
    return np.where(ok, np.clip(np.nan_to_num(need), 1, 23), 23).astype(np.int64)


def storage_precision(idata: InferenceData, groups: tuple[str, ...] | None = None, *,
                      resolution: float = STORAGE_RESOLUTION) -> Any:
    """Round the float draws of ``groups`` (all when ``None``) in place, each element of
    each variable to the mantissa bits that resolve ``resolution`` (1 %) of its
    posterior SD (:func:`storage_bits`, :func:`round_mantissa`); never finer than float32.

    Rounding moves a draw by at most half a percent of its posterior SD: a tenth of the
    Monte Carlo standard error of a posterior mean even with 8,000 independent draws,
    and rounding errors average out in every summary.  The arrays stay float64, so every
    table is computed from exactly the numbers the saved NetCDF holds (its byte shuffle
    and zlib store the zeroed low bits for nothing, :func:`nbdid.outputs.write_netcdf`);
    a typical draw then takes about two bytes on disk instead of eight.  The fewest and
    most bits kept are recorded in each variable's ``nbdid_mantissa_bits`` attribute.
    """
    for name in idata.groups() if groups is None else groups:
        if name not in idata.groups():
            continue
        ds = idata[name]
        for var, da in ds.data_vars.items():
            if da.dtype == np.float64 and {"chain", "draw"} <= set(da.dims):
                da = da.transpose("chain", "draw", ...)
                bits = storage_bits(da.values, resolution)
                new = da.copy(data=round_mantissa(da.values, bits))
                new.attrs["nbdid_mantissa_bits"] = [int(bits.min()), int(bits.max())]
                ds[var] = new
    return idata


REEXPRESSIONS: dict[str, str] = {
    "ward_level_c": "ward_level", "ward_level_z": "ward_level", "ward_z": "ward_level",
    "ward_mean_c": "ward_level", "ward_effect": "ward_level",
    "ward_change_c": "ward_change", "ward_change_z": "ward_change",
    "pair_z": "pair_effect", "wp_z": "wp_effect",
}
"""Sampler-space variables and re-expressions dropped from every posterior once its
draws are complete, each with the named quantity it re-expresses.

Each is a function of its named quantity and the model's other stored variables
(``ward_change_c`` = the ward's change + its group's mean change, ``pair_z`` =
``pair_effect / sigma_pair``, ``ward_effect`` = ``ward_level`` minus its group, pair and
covariate mean; a non-centred ward's unused ``ward_change_z`` is pure prior noise).
Keeping them doubled the posterior files for nothing.  Convergence is checked on the
named quantities instead (``nbdid_free_vars``), which is also what the tables report.
``ward_effect`` stays when the model has a level-change correlation (``ward_corr``):
posterior predictive replicates draw each ward's change given it."""


def _free_names(model: Any, posterior: xr.Dataset) -> list[str]:
    """The posterior variables of ``model``'s free parameters, each dropped
    re-expression (:data:`REEXPRESSIONS`) reported as its named quantity."""
    out: list[str] = []
    for rv in model.free_RVs:
        name = rv.name
        if name not in posterior.data_vars:
            name = REEXPRESSIONS.get(name, name)
        if name in posterior.data_vars and name not in out:
            out.append(name)
    return out


def _without_transformed(idata: InferenceData) -> Any:
    """Drop nutpie's unconstrained copies (``sigma_log__``) of constrained variables
    from the posterior, as PyMC's own sampler does, and the sampler-space
    re-expressions of named quantities (:data:`REEXPRESSIONS`)."""
    post = getattr(idata, "posterior", None)
    if post is None:
        return idata
    names = [v for v in post.data_vars if not str(v).endswith("__")]
    drop = [v for v in post.data_vars
            if str(v).endswith("__") and any(str(v).startswith(f"{n}_") for n in names)]
    for v in names:
        target = REEXPRESSIONS.get(str(v))
        if target is None or target not in post.data_vars:
            continue
        if v == "ward_effect" and "ward_corr" in post.data_vars:
            continue  # predictive replicates draw each ward's change given it
        drop.append(v)
    for v in drop:
        del post[v]
    return idata


def relabel(idata: InferenceData, design: Design) -> Any:
    """Give every group of ``idata`` the coordinate labels of ``design``.

    A compiled nutpie model keeps the coords it was compiled with; after a refit on
    another panel of the same shape the labels are replaced here.
    """
    # imported here: ArviZ takes seconds to import (xarray, scipy, matplotlib); only fitted results need it;
    # xarray loads only when results are built or written (table-only commands skip it)
    import arviz as az
    import xarray as xr

    labels = {k: np.asarray(v) for k, v in design.coords.items()}
    groups = {}
    for name in idata.groups():
        if name == "constant_data":
            continue  # PyMC's copy of the pm.Data values; the design is stored instead
        ds = idata[name]
        present = {k: v for k, v in labels.items() if k in ds.dims}
        groups[name] = ds.assign_coords(present) if present else ds
    # the observed data of *this* design (a refit swaps data into a compiled model)
    groups["observed_data"] = xr.Dataset(
        {"y": ("obs", np.asarray(design.data_arrays()["y_obs"]))},
        coords={"obs": labels["obs"]},
    )
    out = az.InferenceData(**groups)
    attrs = getattr(idata, "attrs", None)
    if attrs:
        out.attrs = dict(attrs)
    return out


_SHARED_CACHE: CompiledModelCache | None = None


def shared_cache() -> CompiledModelCache:
    """The process-wide cache used when a caller does not pass its own.

    ``nbdid fit``, ``nbdid run`` and repeated :func:`nbdid.models.fit.fit_indicator`
    calls in one Python session therefore compile each model structure only once.
    """
    global _SHARED_CACHE
    if _SHARED_CACHE is None:
        _SHARED_CACHE = CompiledModelCache()
    return _SHARED_CACHE

