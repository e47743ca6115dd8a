# Reference fits, problem 1: binomial GLMM on Crowder's seeds data (21 plates).
#
#   r_i ~ Binomial(n_i, p_i)
#   logit p_i = b0 + b_seed * seed_i + b_ext * extract_i + b_int * seed_i * extract_i + u_plate(i)
#   u ~ Normal(0, sigma)
#
# In nbdid's terms (seeds_panel.csv): ward = plate (seen in one period only), group nbi =
# seed 1 (O. aegyptiaca 73), post = extract (1 = cucumber), did = b_int.
#
# Fits: lme4::glmer (Laplace, and adaptive Gauss-Hermite with 25 points) and three brms
# fits with different priors (see README.md). Writes seeds_reference.json / .csv.
#
# Usage (from the repository root):  Rscript tests/reference/glmm/fit_seeds.R

source(file.path(local({
  a <- commandArgs(trailingOnly = FALSE); f <- sub("^--file=", "", a[grep("^--file=", a)])
  if (length(f)) dirname(normalizePath(f)) else "."
}), "common.R"))
here <- script_dir()
suppressPackageStartupMessages({ library(lme4); library(brms) })

d <- read.csv(file.path(here, "seeds_panel.csv"), stringsAsFactors = FALSE)
d$nbi <- as.integer(d$group == "nbi")
d$did <- d$nbi * d$post

fits <- list()

# ------------------------------------------------------------------ lme4
f_lme4 <- cbind(count, exposure - count) ~ nbi + post + did + (1 | ward)
fixed <- c("(Intercept)" = "intercept", nbi = "group_effect", post = "post_effect", did = "did")
for (q in c(1L, 25L)) {
  t0 <- proc.time()[["elapsed"]]
  g <- glmer(f_lme4, data = d, family = binomial, nAGQ = q,
             control = glmerControl(optimizer = "bobyqa"))
  secs <- proc.time()[["elapsed"]] - t0
  fits[[if (q == 1) "glmer_laplace" else "glmer_agq25"]] <- lme4_record(
    g, fixed, c("ward|(Intercept)" = "sigma_ward"),
    "glmer(cbind(count, exposure - count) ~ nbi + post + did + (1 | ward), family = binomial)",
    if (q == 1) "Laplace (nAGQ = 1), ML" else "adaptive Gauss-Hermite, nAGQ = 25, ML", secs
  )
}

# ------------------------------------------------------------------ brms
sampler <- list(chains = 4L, iter = 5000L, warmup = 1000L, draws_total = 16000L,
                adapt_delta = 0.95, max_treedepth = 10L, seed = 20240613L,
                backend = "rstan", stan_parameterisation = "brms default (non-centred ward effects)")
bform <- bf(count | trials(exposure) ~ 0 + Intercept + nbi + post + did + (1 | ward))
formula_text <- "count | trials(exposure) ~ 0 + Intercept + nbi + post + did + (1 | ward), family = binomial(logit)"
names_b <- c(b_Intercept = "intercept", b_nbi = "group_effect", b_post = "post_effect",
             b_did = "did", sd_ward__Intercept = "sigma_ward")
run <- function(prior) timed_brm(
  bform, data = d, family = binomial(), prior = prior,
  chains = sampler$chains, iter = sampler$iter, warmup = sampler$warmup, cores = 2,
  seed = sampler$seed, refresh = 0, silent = 2,
  control = list(adapt_delta = sampler$adapt_delta, max_treedepth = sampler$max_treedepth)
)

# (b) wide priors nbdid can reproduce
p_wide <- prior(normal(0, 5), class = b) + prior(normal(0, 1), class = sd)
fits$brms_wide <- brms_record(
  run(p_wide), names_b,
  list(pr("intercept", "normal", mu = 0, sigma = 5, note = "on the raw intercept (0 + Intercept)"),
       pr("group_effect", "normal", mu = 0, sigma = 5), pr("post_effect", "normal", mu = 0, sigma = 5),
       pr("did", "normal", mu = 0, sigma = 5), pr("sigma_ward", "halfnormal", sigma = 1)),
  formula_text, sampler)

# (c) nbdid's old default scales (did 0.5, other coefficients 1, intercept too)
p_old <- prior(normal(0, 1), class = b) + prior(normal(0, 0.5), class = b, coef = did) +
  prior(normal(0, 1), class = sd)
fits$brms_old_scales <- brms_record(
  run(p_old), names_b,
  list(pr("intercept", "normal", mu = 0, sigma = 1, note = "on the raw intercept (0 + Intercept)"),
       pr("group_effect", "normal", mu = 0, sigma = 1), pr("post_effect", "normal", mu = 0, sigma = 1),
       pr("did", "normal", mu = 0, sigma = 0.5), pr("sigma_ward", "halfnormal", sigma = 1)),
  formula_text, sampler)

# (d) exactly nbdid's old defaults: as (c), but the intercept prior is centred on the logit
# of the pooled pre-period (bean) proportion as nbdid.models.design.link_centre computes it,
# (sum r + 0.5) / (sum n + 1), with sd 2.5
pre <- d$post == 0
pc <- (sum(d$count[pre]) + 0.5) / (sum(d$exposure[pre]) + 1)
centre <- log(pc) - log1p(-pc)
p_exact <- prior_string(sprintf("normal(%.17g, 2.5)", centre), class = "b", coef = "Intercept") +
  prior(normal(0, 1), class = b, coef = nbi) + prior(normal(0, 1), class = b, coef = post) +
  prior(normal(0, 0.5), class = b, coef = did) + prior(normal(0, 1), class = sd)
fits$brms_old_defaults <- brms_record(
  run(p_exact), names_b,
  list(pr("intercept", "normal", mu = centre, sigma = 2.5,
          note = "mu = logit((sum of pre-period count + 0.5) / (sum of pre-period exposure + 1)), nbdid's link_centre"),
       pr("group_effect", "normal", mu = 0, sigma = 1), pr("post_effect", "normal", mu = 0, sigma = 1),
       pr("did", "normal", mu = 0, sigma = 0.5), pr("sigma_ward", "halfnormal", sigma = 1)),
  formula_text, sampler)

record <- list(
  problem = "seeds", data = "seeds_panel.csv", source_data = "seeds.csv",
  family = "binomial", link = "logit",
  model = paste(
    "count[w] ~ Binomial(exposure[w], p[w]);",
    "logit p[w] = intercept + group_effect * nbi[w] + post_effect * post[w] + did * nbi[w] * post[w] + u[w];",
    "u[w] ~ Normal(0, sigma_ward). Each ward (plate) is observed in one period only:",
    "no ward change term and no observation-level term."),
  parameters = list(
    intercept = "b0: logit germination, O. aegyptiaca 75 on bean extract (benchmark, pre)",
    group_effect = "b_seed: seed O. aegyptiaca 73 (nbi) vs 75",
    post_effect = "b_ext: cucumber (post) vs bean extract; the single period effect",
    did = "b_int: seed x extract interaction",
    sigma_ward = "SD of the plate (ward) effects"),
  nbdid_mapping = list(group = "nbi = seed 1 (O. aegyptiaca 73)", post = "extract (1 = cucumber)",
                       ward = "plate", period = "0 = bean, 1 = cucumber"),
  bugs_reference = list(
    source = "BUGS Examples vol. 1 'Seeds' (as quoted in stan-dev/example-models bugs_examples/vol1/seeds/seeds.R); priors Normal(0, 1e6 variance), tau ~ Gamma(0.001, 0.001)",
    mean = list(intercept = -0.542, group_effect = 0.028, post_effect = 1.37, did = -0.79, sigma_ward = 0.29),
    sd = list(intercept = 0.18, group_effect = 0.34, post_effect = 0.25, did = 0.43, sigma_ward = 0.15))
)
write_results(here, "seeds", record, fits)
