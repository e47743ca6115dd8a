# Shared helpers for the reference fits in this folder (sourced by fit_*.R).
#
# - puts the private R library NBDID_R_LIB (default /opt/nbdid-r-lib; see setup_r.sh) first
#   on .libPaths(), so rstan finds BH's include/ folder;
# - summarises brms/lme4 fits into plain lists that jsonlite writes as JSON, and into one
#   flat data frame per problem for the CSV.

local({
  lib <- Sys.getenv("NBDID_R_LIB", "/opt/nbdid-r-lib")
  if (dir.exists(lib)) .libPaths(c(lib, .libPaths()))
})

suppressPackageStartupMessages({
  library(jsonlite)
})

script_dir <- function() {
  args <- commandArgs(trailingOnly = FALSE)
  file_arg <- sub("^--file=", "", args[grep("^--file=", args)])
  if (length(file_arg)) dirname(normalizePath(file_arg)) else "."
}

versions <- function() {
  pk <- c("brms", "rstan", "StanHeaders", "lme4", "posterior", "Matrix", "MASS", "BH",
          "jsonlite")
  v <- lapply(pk, function(p) tryCatch(as.character(packageVersion(p)), error = function(e) NA))
  names(v) <- pk
  c(list(R = as.character(getRversion()), platform = R.version$platform,
         os = tryCatch(utils::sessionInfo()$running, error = function(e) NA)), v)
}

# Posterior summary of the named variables of a brms fit or a draws array.
# `names` maps variable -> reference parameter name.
brms_summary <- function(fit, names) {
  draws <- posterior::subset_draws(posterior::as_draws_array(fit), variable = names(names))
  s <- posterior::summarise_draws(
    draws,
    mean = mean, sd = sd, median = median,
    ~ posterior::quantile2(.x, probs = c(0.025, 0.05, 0.95, 0.975)),
    rhat = posterior::rhat, ess_bulk = posterior::ess_bulk, ess_tail = posterior::ess_tail,
    mcse_mean = posterior::mcse_mean, mcse_sd = posterior::mcse_sd
  )
  out <- list()
  for (i in seq_len(nrow(s))) {
    v <- s$variable[i]
    out[[names[[v]]]] <- list(
      brms_variable = v, mean = s$mean[i], sd = s$sd[i], median = s$median[i],
      q2.5 = s$q2.5[i], q5 = s$q5[i], q95 = s$q95[i], q97.5 = s$q97.5[i],
      rhat = s$rhat[i], ess_bulk = s$ess_bulk[i], ess_tail = s$ess_tail[i],
      mcse_mean = s$mcse_mean[i], mcse_sd = s$mcse_sd[i],
      mcse_mean_over_sd = s$mcse_mean[i] / s$sd[i]
    )
  }
  out
}

# Divergences, hits of the maximum tree depth and the smallest E-BFMI of a stanfit.
sampler_diagnostics <- function(sf) {
  list(divergences = rstan::get_num_divergent(sf),
       max_treedepth_hits = rstan::get_num_max_treedepth(sf),
       bfmi_min = min(rstan::get_bfmi(sf)))
}

`%||%` <- function(a, b) if (is.null(a)) b else a

# Run a brms fit and return (fit, seconds). Arguments go to brms::brm.
timed_brm <- function(...) {
  t0 <- proc.time()[["elapsed"]]
  fit <- brms::brm(...)
  list(fit = fit, seconds = proc.time()[["elapsed"]] - t0)
}

# Everything about one brms fit that a test needs.
# `res` is timed_brm()'s result, or list(fit = <stanfit>, seconds = ...) with engine = "rstan".
brms_record <- function(res, names, priors, formula_text, sampler, note = NULL, engine = "brms") {
  fit <- res$fit
  sf <- if (engine == "brms") fit$fit else fit
  summ <- brms_summary(if (engine == "brms") fit else posterior::as_draws_array(as.array(sf)), names)
  diag <- sampler_diagnostics(sf)
  rhat_max <- max(vapply(summ, function(x) x$rhat, 0))
  ess_min <- min(vapply(summ, function(x) x$ess_bulk, 0))
  ess_tail_min <- min(vapply(summ, function(x) x$ess_tail, 0))
  mc_max <- max(vapply(summ, function(x) x$mcse_mean_over_sd, 0))
  diag <- c(diag, list(rhat_max = rhat_max, ess_bulk_min = ess_min, ess_tail_min = ess_tail_min,
                       mcse_mean_over_sd_max = mc_max,
                       converged = rhat_max <= 1.01 && diag$divergences == 0))
  prior_table <- if (engine == "brms")
    as.data.frame(brms::prior_summary(fit))[, c("prior", "class", "coef", "group", "lb", "ub")]
  c(list(engine = engine, formula = formula_text, priors = priors),
    if (!is.null(prior_table)) list(brms_prior_table = prior_table),
    list(sampler = sampler, seconds = unname(res$seconds), diagnostics = diag,
         parameters = summ),
    if (!is.null(note)) list(note = note))
}

# lme4 fixed effects (estimate, se) and variance components (estimate only).
lme4_record <- function(fit, fixed_names, sd_names, formula_text, method, seconds, note = NULL) {
  fe <- lme4::fixef(fit)
  se <- sqrt(diag(as.matrix(vcov(fit))))
  pars <- list()
  for (v in names(fixed_names)) {
    pars[[fixed_names[[v]]]] <- list(lme4_term = v, estimate = unname(fe[[v]]), se = unname(se[[v]]))
  }
  vc <- as.data.frame(lme4::VarCorr(fit))
  for (v in names(sd_names)) {
    parts <- strsplit(v, "|", fixed = TRUE)[[1]]
    row <- vc[vc$grp == parts[1] & vc$var1 == parts[2] & is.na(vc$var2), ]
    stopifnot(nrow(row) == 1)
    pars[[sd_names[[v]]]] <- list(lme4_term = v, estimate = row$sdcor, se = NA)
  }
  opt <- fit@optinfo
  c(list(engine = "lme4", method = method, formula = formula_text, seconds = unname(seconds),
         logLik = as.numeric(logLik(fit)), converged = length(opt$conv$lme4$messages) == 0,
         convergence_messages = opt$conv$lme4$messages %||% list(),
         singular = lme4::isSingular(fit), parameters = pars),
    if (!is.null(note)) list(note = note))
}

# Flatten a problem's fits into one data frame (one row per fit x parameter).
flatten_fits <- function(problem, fits) {
  rows <- list()
  for (fname in names(fits)) {
    f <- fits[[fname]]
    for (p in names(f$parameters)) {
      x <- f$parameters[[p]]
      g <- function(k) if (is.null(x[[k]])) NA_real_ else as.numeric(x[[k]])
      rows[[length(rows) + 1]] <- data.frame(
        problem = problem, fit = fname, engine = f$engine, parameter = p,
        mean = g("mean"), sd = g("sd"), q2.5 = g("q2.5"), q5 = g("q5"), q95 = g("q95"),
        q97.5 = g("q97.5"), rhat = g("rhat"), ess_bulk = g("ess_bulk"), ess_tail = g("ess_tail"),
        mcse_mean = g("mcse_mean"), estimate = g("estimate"), se = g("se"),
        stringsAsFactors = FALSE
      )
    }
  }
  do.call(rbind, rows)
}

write_results <- function(here, problem, record, fits) {
  record$fits <- fits
  record$versions <- versions()
  record$written <- format(Sys.time(), "%Y-%m-%dT%H:%M:%S%z")
  json <- jsonlite::toJSON(record, auto_unbox = TRUE, pretty = TRUE, digits = NA, na = "null",
                           null = "null")
  writeLines(json, file.path(here, paste0(problem, "_reference.json")))
  flat <- flatten_fits(problem, fits)
  write.csv(flat, file.path(here, paste0(problem, "_reference.csv")), row.names = FALSE)
  print(flat[, c("fit", "parameter", "mean", "sd", "q2.5", "q97.5", "rhat", "ess_bulk", "estimate", "se")],
        digits = 4, row.names = FALSE)
}

# Prior description used in the JSON: list of (parameter, distribution, arguments).
pr <- function(parameter, dist, ...) list(parameter = parameter, distribution = dist, ...)
