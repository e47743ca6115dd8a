# Reference fits, problem 3 (continued): the four Gaussian two-group models of
# fit_gaussian.R -- known SD or estimated residual SD x group-specific or shared change
# SD -- fitted with rstan with the ward effects integrated out (gaussian_marginal.stan).
# Their posteriors are those of the brms models of fit_gaussian.R.  brms's own versions
# of the estimated-sigma models did not converge (non-centred ward effects: R-hat 1.2,
# E-BFMI 0.005; stored as brms_estsigma_* in gaussian_reference.json), so these are the
# MCMC references for them; the known-SD ones cross-check brms.
# Writes gaussian_marginal_reference.json / .csv.  Needs rstan only (not brms).
# Usage (from the repository root):  Rscript tests/reference/glmm/fit_gaussian_marginal.R

source(file.path(local({
  a <- commandArgs(trailingOnly = FALSE); f <- sub("^--file=", "", a[grep("^--file=", a)])
  if (length(f)) dirname(normalizePath(f)) else "."
}), "common.R"))
here <- script_dir()
suppressPackageStartupMessages(library(rstan))

d <- read.csv(file.path(here, "gaussian_panel.csv"), stringsAsFactors = FALSE)
fits <- list()
sampler <- list(chains = 4L, iter = 7000L, warmup = 1000L, draws_total = 24000L,
                adapt_delta = 0.95, max_treedepth = 10L, seed = 20240613L, backend = "rstan")
fixed_priors <- list(
  pr("intercept", "normal", mu = 0, sigma = 5), pr("post_effect", "normal", mu = 0, sigma = 5),
  pr("group_effect", "normal", mu = 0, sigma = 5), pr("did", "normal", mu = 0, sigma = 5),
  pr("sigma_ward", "halfnormal", sigma = 1))
pri_group <- list(pr("sigma_change_nbi", "halfnormal", sigma = 1),
                  pr("sigma_change_benchmark", "halfnormal", sigma = 1))
pri_shared <- list(pr("sigma_change", "halfnormal", sigma = 1))
rhs_group <- "0 + Intercept + post + nbi + did + (1 | ward) + (0 + post | gr(ward, by = group))"
rhs_shared <- "0 + Intercept + post + nbi + did + (1 | ward) + (0 + post | ward)"

# ------------------------------------------------------------------ rstan, ward effects integrated out
# The same four models (known SD or estimated sigma) x (group-specific or shared change SD)
# with u and v integrated out analytically (gaussian_marginal.stan): the posteriors of the
# parameters are those of the brms models. brms's own versions of the estimated-sigma models
# did not converge (non-centred ward effects; R-hat 1.2, E-BFMI 0.005), so only these fits
# are stored for them. The known-SD ones cross-check brms.
d0 <- d[d$period == 0, ]; d1 <- d[d$period == 1, ]
d0 <- d0[order(d0$ward), ]; d1 <- d1[order(d1$ward), ]
stopifnot(identical(d0$ward, d1$ward))
t0 <- proc.time()[["elapsed"]]
sm <- rstan::stan_model(file.path(here, "gaussian_marginal.stan"))
compile_seconds <- proc.time()[["elapsed"]] - t0
for (known in c(1L, 0L)) for (gs in c(1L, 0L)) {
  v <- paste0("stan_marginal_", if (known == 1) "knownsd" else "estsigma", "_", if (gs == 1) "groupsd" else "shared")
  dat <- list(N = nrow(d0), y0 = d0$value, y1 = d1$value, s0 = d0$sd, s1 = d1$sd,
              nbi = as.integer(d0$group == "nbi"), known_sd = known, group_sd = gs)
  t0 <- proc.time()[["elapsed"]]
  sf <- rstan::sampling(sm, data = dat, chains = sampler$chains, iter = sampler$iter,
                        warmup = sampler$warmup, cores = 2, seed = sampler$seed, refresh = 0,
                        control = list(adapt_delta = sampler$adapt_delta,
                                       max_treedepth = sampler$max_treedepth))
  secs <- proc.time()[["elapsed"]] - t0
  nm <- c(intercept = "intercept", post_effect = "post_effect", group_effect = "group_effect",
          did = "did", sigma_ward = "sigma_ward")
  if (gs == 1) nm <- c(nm, `sigma_change[1]` = "sigma_change_benchmark", `sigma_change[2]` = "sigma_change_nbi")
  else nm <- c(nm, `sigma_change[1]` = "sigma_change")
  if (known == 0) nm <- c(nm, `sigma[1]` = "sigma")
  pri <- c(fixed_priors, if (gs == 1) pri_group else pri_shared,
           if (known == 0) list(pr("sigma", "halfnormal", sigma = 1)))
  smp <- sampler
  smp$stan_parameterisation <- "ward effects integrated out (bivariate normal per ward)"
  smp$compile_seconds <- compile_seconds
  fits[[v]] <- brms_record(
    list(fit = sf, seconds = secs), nm, pri,
    paste("gaussian_marginal.stan with known_sd =", known, "and group_sd =", gs,
          "(equivalent brms formula:", paste0(if (known == 1) "value | se(sd, sigma = FALSE)" else "value",
          " ~ ", if (gs == 1) rhs_group else rhs_shared, ")")),
    smp, engine = "rstan",
    note = if (known == 1) "known SD of each row (column sd), no residual SD"
           else "residual SD sigma estimated (column sd ignored)")
  cat(v, "done in", round(secs), "s\n")
}

record <- list(
  problem = "gaussian_marginal", data = "gaussian_panel.csv", synthetic = TRUE,
  family = "gaussian", link = "identity",
  model = paste(
    "As gaussian_reference.json, with u and v integrated out: per ward, (value[w,0], value[w,1]) is",
    "bivariate normal with mean (m0, m0 + post_effect + did * nbi), m0 = intercept + group_effect * nbi,",
    "and covariance [[sigma_ward^2 + e0^2, sigma_ward^2], [sigma_ward^2, sigma_ward^2 + sc^2 + e1^2]],",
    "sc the change SD of the ward's group (or the shared one), e_t the known SD of the row or sigma."),
  stan_file = "gaussian_marginal.stan"
)
write_results(here, "gaussian_marginal", record, fits)
