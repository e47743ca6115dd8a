# Reference fits, problem 3: Gaussian two-group panel with unequal variance of the ward
# change (20 nbi vs 309 benchmark units, two periods; simulated by make_data.R).
#
#   value[w,t] ~ Normal(eta[w,t], sd[w,t])            (known SD of each mean: column sd)
#     or         Normal(eta[w,t], sigma)              (residual SD estimated)
#   eta = intercept + post_effect * post[t] + group_effect * nbi[w] + did * nbi[w] * post[t]
#         + u[w] + v[w] * post[t]
#   u ~ Normal(0, sigma_ward)
#   v ~ Normal(0, sigma_change_nbi) for nbi wards, Normal(0, sigma_change_benchmark) otherwise
#     (group-specific), or Normal(0, sigma_change) for all wards (shared)
#
# Fits: brms with known SDs (group-specific and shared change SD); lme4::lmer with
# estimated sigma (shared and group-specific change SD); the Welch (unequal-variance) and
# pooled-variance two-sample standard errors of the difference in mean per-unit changes.
# All four models (known SD / estimated sigma x group-specific / shared change SD) are also
# fitted with rstan with the ward effects integrated out (gaussian_marginal.stan); for the
# estimated-sigma models these are the only MCMC fits stored, because brms's versions did
# not converge (README.md, "problem 3").
# Writes gaussian_reference.json / .csv.
# Usage (from the repository root):  Rscript tests/reference/glmm/fit_gaussian.R

source(file.path(local({
  a <- commandArgs(trailingOnly = FALSE); f <- sub("^--file=", "", a[grep("^--file=", a)])
  if (length(f)) dirname(normalizePath(f)) else "."
}), "common.R"))
here <- script_dir()
suppressPackageStartupMessages({ library(lme4); library(brms) })

d <- read.csv(file.path(here, "gaussian_panel.csv"), stringsAsFactors = FALSE)
d$nbi <- as.integer(d$group == "nbi")
d$bench <- 1L - d$nbi
d$did <- d$nbi * d$post
d$post_nbi <- d$post * d$nbi
d$post_bench <- d$post * d$bench
d$group <- factor(d$group, levels = c("benchmark", "nbi"))

fits <- list()

# ------------------------------------------------------------------ two-sample SEs on changes
w <- reshape(d[, c("ward", "group", "period", "value")], idvar = c("ward", "group"),
             timevar = "period", direction = "wide")
w$change <- w$value.1 - w$value.0
cn <- w$change[w$group == "nbi"]; cb <- w$change[w$group == "benchmark"]
welch <- t.test(cn, cb, var.equal = FALSE)
pooled <- t.test(cn, cb, var.equal = TRUE)
two_sample <- list(
  estimate = mean(cn) - mean(cb),
  se_welch = unname(welch$stderr), df_welch = unname(welch$parameter),
  se_pooled = unname(pooled$stderr), df_pooled = unname(pooled$parameter),
  ratio_pooled_over_welch = unname(pooled$stderr / welch$stderr),
  n_nbi = length(cn), n_benchmark = length(cb),
  sd_change_nbi = sd(cn), sd_change_benchmark = sd(cb),
  definition = paste("per-unit change = value[post] - value[pre]; estimate = mean change (nbi) - mean change (benchmark);",
                     "se_welch = sqrt(s_nbi^2/n_nbi + s_bench^2/n_bench);",
                     "se_pooled = sqrt(s_p^2 (1/n_nbi + 1/n_bench)), s_p^2 = ((n_nbi-1) s_nbi^2 + (n_bench-1) s_bench^2)/(n_nbi+n_bench-2)")
)

# ------------------------------------------------------------------ lme4 (estimated sigma)
fixed <- c("(Intercept)" = "intercept", post = "post_effect", nbi = "group_effect", did = "did")
t0 <- proc.time()[["elapsed"]]
m_shared <- lmer(value ~ post + nbi + did + (1 | ward) + (0 + post | ward), data = d, REML = TRUE,
                 control = lmerControl(check.nobs.vs.nRE = "ignore"))
s1 <- proc.time()[["elapsed"]] - t0
t0 <- proc.time()[["elapsed"]]
m_group <- lmer(value ~ post + nbi + did + (1 | ward) + (0 + post_nbi | ward) + (0 + post_bench | ward),
                data = d, REML = TRUE, control = lmerControl(check.nobs.vs.nRE = "ignore"))
s2 <- proc.time()[["elapsed"]] - t0
add_sigma <- function(rec, fit) {
  rec$parameters$sigma <- list(lme4_term = "Residual", estimate = sigma(fit), se = NA)
  rec
}
fits$lmer_estsigma_shared <- add_sigma(lme4_record(
  m_shared, fixed, c("ward|(Intercept)" = "sigma_ward", "ward.1|post" = "sigma_change"),
  "lmer(value ~ post + nbi + did + (1 | ward) + (0 + post | ward), REML = TRUE)", "REML", s1,
  note = "residual SD estimated (column sd ignored); check.nobs.vs.nRE = 'ignore' (2 obs per ward)"), m_shared)
fits$lmer_estsigma_groupsd <- add_sigma(lme4_record(
  m_group, fixed,
  c("ward|(Intercept)" = "sigma_ward", "ward.1|post_nbi" = "sigma_change_nbi",
    "ward.2|post_bench" = "sigma_change_benchmark"),
  "lmer(value ~ post + nbi + did + (1 | ward) + (0 + post:nbi | ward) + (0 + post:benchmark | ward), REML = TRUE)",
  "REML", s2,
  note = "residual SD estimated (column sd ignored); check.nobs.vs.nRE = 'ignore' (2 obs per ward)"), m_group)

# ------------------------------------------------------------------ brms
sampler <- list(chains = 4L, iter = 7000L, warmup = 1000L, draws_total = 24000L,
                adapt_delta = 0.95, max_treedepth = 10L, seed = 20240613L,
                backend = "rstan", stan_parameterisation = "brms default (non-centred ward effects)")
run <- function(formula, prior) timed_brm(
  formula, data = d, family = gaussian(), prior = prior,
  chains = sampler$chains, iter = sampler$iter, warmup = sampler$warmup, cores = 2,
  seed = sampler$seed, refresh = 0, silent = 2,
  control = list(adapt_delta = sampler$adapt_delta, max_treedepth = sampler$max_treedepth)
)
fixed_priors <- list(
  pr("intercept", "normal", mu = 0, sigma = 5, note = "on the raw intercept (0 + Intercept)"),
  pr("post_effect", "normal", mu = 0, sigma = 5), pr("group_effect", "normal", mu = 0, sigma = 5),
  pr("did", "normal", mu = 0, sigma = 5), pr("sigma_ward", "halfnormal", sigma = 1))
pri_group <- list(pr("sigma_change_nbi", "halfnormal", sigma = 1),
                  pr("sigma_change_benchmark", "halfnormal", sigma = 1))
pri_shared <- list(pr("sigma_change", "halfnormal", sigma = 1))
names_fixed <- c(b_Intercept = "intercept", b_post = "post_effect", b_nbi = "group_effect",
                 b_did = "did", sd_ward__Intercept = "sigma_ward")
names_group <- c(names_fixed, `sd_ward__post:groupnbi` = "sigma_change_nbi",
                 `sd_ward__post:groupbenchmark` = "sigma_change_benchmark")
names_shared <- c(names_fixed, sd_ward__post = "sigma_change")
p_known <- prior(normal(0, 5), class = b) + prior(normal(0, 1), class = sd)
rhs_group <- "0 + Intercept + post + nbi + did + (1 | ward) + (0 + post | gr(ward, by = group))"
rhs_shared <- "0 + Intercept + post + nbi + did + (1 | ward) + (0 + post | ward)"
variants <- list(
  brms_knownsd_groupsd = list(lhs = "value | se(sd, sigma = FALSE)", rhs = rhs_group, prior = p_known,
                              names = names_group, pri = c(fixed_priors, pri_group)),
  brms_knownsd_shared = list(lhs = "value | se(sd, sigma = FALSE)", rhs = rhs_shared, prior = p_known,
                             names = names_shared, pri = c(fixed_priors, pri_shared))
)
for (v in names(variants)) {
  x <- variants[[v]]
  f_text <- paste(x$lhs, "~", x$rhs)
  nm <- x$names
  res <- run(bf(as.formula(f_text)), x$prior)
  fits[[v]] <- brms_record(
    res, nm, x$pri, paste0(f_text, ", family = gaussian(identity)"), sampler,
    note = "known SD of each row (column sd), no residual SD")
  cat(v, "done in", round(res$seconds), "s\n")
}

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

truth <- jsonlite::fromJSON(file.path(here, "gaussian_truth.json"))
record <- list(
  problem = "gaussian", data = "gaussian_panel.csv", synthetic = TRUE,
  family = "gaussian", link = "identity",
  model = paste(
    "value[w,t] ~ Normal(eta[w,t], sd[w,t]) with sd known (knownsd fits) or Normal(eta[w,t], sigma) (estsigma fits);",
    "eta = intercept + post_effect * post[t] + group_effect * nbi[w] + did * nbi[w] * post[t] + u[w] + v[w] * post[t];",
    "u ~ Normal(0, sigma_ward); v ~ Normal(0, sigma_change_nbi) / Normal(0, sigma_change_benchmark) by group",
    "(groupsd fits) or Normal(0, sigma_change) (shared fits); u and v independent; no pair effects."),
  truth = truth,
  two_sample = two_sample,
  nbdid_mapping = list(ward = "unit", group = "nbi: 20 units, benchmark: 309 units", period = "0 = before, 1 = after")
)
write_results(here, "gaussian", record, fits)
cat(sprintf("two-sample: estimate %.5f, Welch SE %.5f, pooled SE %.5f (ratio %.3f)\n",
            two_sample$estimate, two_sample$se_welch, two_sample$se_pooled,
            two_sample$ratio_pooled_over_welch))
