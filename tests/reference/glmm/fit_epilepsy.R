# Reference fits, problem 2: Poisson GLMM with a covariate on a DiD panel with exposure,
# built from the epilepsy trial (Thall & Vail 1990; MASS::epil), see make_data.R.
#
#   count[w,t] ~ Poisson(exposure[w,t] * exp(eta[w,t]))
#   eta = intercept + period_effect[t] (t = 1..4; period 0 = baseline is the reference)
#         + group_effect * nbi[w] + did * nbi[w] * post[t]
#         + beta_zage * zage[w] + beta_zage_post * zage[w] * post[t]
#         + u[w] + v[w] * post[t]
#   u ~ Normal(0, sigma_ward), v ~ Normal(0, sigma_change), independent.
#
# Fits: lme4::glmer (Laplace) and brms. Writes epilepsy_reference.json / .csv.
# Usage (from the repository root):  Rscript tests/reference/glmm/fit_epilepsy.R

source(file.path(local({
  a <- commandArgs(trailingOnly = FALSE); f <- sub("^--file=", "", a[grep("^--file=", a)])
  if (length(f)) dirname(normalizePath(f)) else "."
}), "common.R"))
here <- script_dir()
suppressPackageStartupMessages({ library(lme4); library(brms) })

d <- read.csv(file.path(here, "epilepsy_panel.csv"), stringsAsFactors = FALSE)
d$nbi <- as.integer(d$group == "nbi")
d$did <- d$nbi * d$post
for (t in 1:4) d[[paste0("p", t)]] <- as.integer(d$period == t)
d$zage_post <- d$zage * d$post
d$log_exposure <- log(d$exposure)

fits <- list()
fixed <- c("(Intercept)" = "intercept", p1 = "period_effect[1]", p2 = "period_effect[2]",
           p3 = "period_effect[3]", p4 = "period_effect[4]", nbi = "group_effect", did = "did",
           zage = "beta_zage", zage_post = "beta_zage_post")

# ------------------------------------------------------------------ lme4
t0 <- proc.time()[["elapsed"]]
g <- glmer(count ~ p1 + p2 + p3 + p4 + nbi + did + zage + zage_post + offset(log_exposure) +
             (1 | ward) + (0 + post | ward),
           data = d, family = poisson, control = glmerControl(optimizer = "bobyqa"))
secs <- proc.time()[["elapsed"]] - t0
fits$glmer_laplace <- lme4_record(
  g, fixed, c("ward|(Intercept)" = "sigma_ward", "ward.1|post" = "sigma_change"),
  paste("glmer(count ~ p1 + p2 + p3 + p4 + nbi + did + zage + zage_post + offset(log(exposure))",
        "+ (1 | ward) + (0 + post | ward), family = poisson)"),
  "Laplace (nAGQ = 1), ML", secs)

# ------------------------------------------------------------------ brms
sampler <- list(chains = 4L, iter = 5000L, warmup = 1000L, draws_total = 16000L,
                adapt_delta = 0.95, max_treedepth = 10L, seed = 20240613L,
                backend = "rstan", stan_parameterisation = "brms default (non-centred ward effects)")
bform <- bf(count ~ 0 + Intercept + p1 + p2 + p3 + p4 + nbi + did + zage + zage_post +
              offset(log_exposure) + (1 | ward) + (0 + post | ward))
formula_text <- paste("count ~ 0 + Intercept + p1 + p2 + p3 + p4 + nbi + did + zage + zage_post",
                      "+ offset(log(exposure)) + (1 | ward) + (0 + post | ward), family = poisson(log)")
names_b <- c(b_Intercept = "intercept", b_p1 = "period_effect[1]", b_p2 = "period_effect[2]",
             b_p3 = "period_effect[3]", b_p4 = "period_effect[4]", b_nbi = "group_effect",
             b_did = "did", b_zage = "beta_zage", b_zage_post = "beta_zage_post",
             sd_ward__Intercept = "sigma_ward", sd_ward__post = "sigma_change")
p_wide <- prior(normal(0, 5), class = b) + prior(normal(0, 1), class = sd)
res <- timed_brm(
  bform, data = d, family = poisson(), prior = p_wide,
  chains = sampler$chains, iter = sampler$iter, warmup = sampler$warmup, cores = 2,
  seed = sampler$seed, refresh = 0, silent = 2,
  control = list(adapt_delta = sampler$adapt_delta, max_treedepth = sampler$max_treedepth)
)
fits$brms_wide <- brms_record(
  res, names_b,
  c(list(pr("intercept", "normal", mu = 0, sigma = 5, note = "on the raw intercept (0 + Intercept)")),
    lapply(c(sprintf("period_effect[%d]", 1:4), "group_effect", "did", "beta_zage", "beta_zage_post"),
           function(p) pr(p, "normal", mu = 0, sigma = 5)),
    list(pr("sigma_ward", "halfnormal", sigma = 1), pr("sigma_change", "halfnormal", sigma = 1))),
  formula_text, sampler)

pat <- d[d$period == 0, ]
record <- list(
  problem = "epilepsy", data = "epilepsy_panel.csv",
  source_data = "MASS::epil (R package MASS 7.3; Thall & Vail 1990, Biometrics 46:657-671)",
  family = "poisson", link = "log",
  model = paste(
    "count[w,t] ~ Poisson(exposure[w,t] * exp(eta[w,t]));",
    "eta = intercept + period_effect[t] (t = 1..4, period_effect[0] = 0) + group_effect * nbi[w]",
    "+ did * nbi[w] * post[t] + beta_zage * zage[w] + beta_zage_post * zage[w] * post[t]",
    "+ u[w] + v[w] * post[t]; u ~ Normal(0, sigma_ward), v ~ Normal(0, sigma_change), independent",
    "(no level-change correlation, no pair effects, no observation-level overdispersion term)."),
  parameters = list(
    intercept = "log seizure rate per 2 weeks at baseline, placebo, zage = 0",
    `period_effect[t]` = "visit t (2-week period) vs the 8-week baseline (per 2 weeks), t = 1..4",
    group_effect = "progabide (nbi) vs placebo at baseline",
    did = "progabide x post: the DiD on the log-rate scale",
    beta_zage = "standardised log age, main effect",
    beta_zage_post = "standardised log age x post (age predicts change)",
    sigma_ward = "SD of patient levels u", sigma_change = "SD of patient changes v"),
  covariates = list(zage = list(level = "ward (time-constant)",
                                definition = "(log(age) - mean(log(age))) / sd(log(age)) over the 59 patients, sd with n - 1",
                                mean_log_age = mean(log(pat$age)), sd_log_age = sd(log(pat$age)))),
  nbdid_mapping = list(ward = "patient", group = "nbi = progabide, benchmark = placebo",
                       period = "0 = 8-week baseline (exposure 4), 1..4 = 2-week visits (exposure 1)",
                       post = "period > 0"),
  n_wards = length(unique(d$ward)), n_obs = nrow(d)
)
write_results(here, "epilepsy", record, fits)
