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
# Fits: brms with known SDs (group-specific and shared change SD) and with an estimated
# sigma (the same two; they do not converge and are stored as evidence of it, README.md
# "problem 3"); lme4::lmer with estimated sigma (shared and group-specific change SD); the
# Welch (unequal-variance) and pooled-variance two-sample standard errors of the
# difference in mean per-unit changes.  All four models are also fitted with rstan with the
# ward effects integrated out by fit_gaussian_marginal.R (gaussian_marginal_reference.json).
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
sampler <- list(chains = 4L, iter = 5000L, warmup = 1000L, draws_total = 16000L,
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
p_est <- p_known + prior(normal(0, 1), class = sigma)
pri_sigma <- list(pr("sigma", "halfnormal", sigma = 1))
note_known <- "known SD of each row (column sd), no residual SD"
note_est <- "residual SD sigma estimated (column sd ignored)"
rhs_group <- "0 + Intercept + post + nbi + did + (1 | ward) + (0 + post | gr(ward, by = group))"
rhs_shared <- "0 + Intercept + post + nbi + did + (1 | ward) + (0 + post | ward)"
variants <- list(
  brms_knownsd_groupsd = list(lhs = "value | se(sd, sigma = FALSE)", rhs = rhs_group, prior = p_known,
                              names = names_group, pri = c(fixed_priors, pri_group), note = note_known),
  brms_knownsd_shared = list(lhs = "value | se(sd, sigma = FALSE)", rhs = rhs_shared, prior = p_known,
                             names = names_shared, pri = c(fixed_priors, pri_shared), note = note_known),
  # stored although they do not converge (README.md, problem 3): see fit_gaussian_marginal.R
  brms_estsigma_groupsd = list(lhs = "value", rhs = rhs_group, prior = p_est,
                               names = c(names_group, sigma = "sigma"),
                               pri = c(fixed_priors, pri_group, pri_sigma), note = note_est),
  brms_estsigma_shared = list(lhs = "value", rhs = rhs_shared, prior = p_est,
                              names = c(names_shared, sigma = "sigma"),
                              pri = c(fixed_priors, pri_shared, pri_sigma), note = note_est)
)
for (v in names(variants)) {
  x <- variants[[v]]
  f_text <- paste(x$lhs, "~", x$rhs)
  nm <- x$names
  res <- run(bf(as.formula(f_text)), x$prior)
  fits[[v]] <- brms_record(
    res, nm, x$pri, paste0(f_text, ", family = gaussian(identity)"), sampler, note = x$note)
  cat(v, "done in", round(res$seconds), "s\n")
}

# The same four models with the ward effects integrated out (rstan) are in
# fit_gaussian_marginal.R (gaussian_marginal_reference.json).

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
