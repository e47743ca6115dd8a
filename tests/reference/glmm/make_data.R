# Write the three reference panels in nbdid's long-panel layout.
#
#   seeds_panel.csv     from seeds.csv (21 plates, Crowder 1978; transcribed, see README)
#   epilepsy_panel.csv  from MASS::epil (Thall & Vail 1990; 59 patients, baseline + 4 visits)
#   gaussian_panel.csv  simulated here with a fixed seed (20 NBI vs 309 benchmark units)
#
# Usage (from the repository root):  Rscript tests/reference/glmm/make_data.R
# The outputs are deterministic (R >= 3.6 default RNG, set explicitly below).

source(file.path(local({
  a <- commandArgs(trailingOnly = FALSE); f <- sub("^--file=", "", a[grep("^--file=", a)])
  if (length(f)) dirname(normalizePath(f)) else "."
}), "common.R"))
here <- script_dir()
fmt <- function(x) sprintf("%.17g", x)

# ---------------------------------------------------------------- 1. seeds (binomial)
seeds <- read.csv(file.path(here, "seeds.csv"))
stopifnot(nrow(seeds) == 21, sum(seeds$r) == 424, sum(seeds$n) == 831)
seeds_panel <- data.frame(
  indicator = "germination",
  ward = sprintf("plate%02d", seeds$plate),
  group = ifelse(seeds$seed == 1, "nbi", "benchmark"),   # nbi = O. aegyptiaca 73
  pair = "",
  period = seeds$extract,                                 # 0 = bean, 1 = cucumber
  period_label = ifelse(seeds$extract == 1, "cucumber", "bean"),
  post = seeds$extract,
  count = seeds$r,
  exposure = seeds$n
)
write.csv(seeds_panel, file.path(here, "seeds_panel.csv"), row.names = FALSE, quote = FALSE)

# ---------------------------------------------------------------- 2. epilepsy (Poisson)
epil <- MASS::epil
pat <- epil[epil$period == 1, c("subject", "trt", "base", "age")]
pat <- pat[order(pat$subject), ]
stopifnot(nrow(pat) == 59)
lage <- log(pat$age)
pat$zage <- (lage - mean(lage)) / sd(lage)               # sd with n - 1, over the 59 patients
base_rows <- data.frame(subject = pat$subject, period = 0L, count = pat$base, exposure = 4)
visit_rows <- data.frame(subject = epil$subject, period = epil$period, count = epil$y, exposure = 1)
long <- rbind(base_rows, visit_rows)
long <- merge(long, pat[, c("subject", "trt", "age", "zage")], by = "subject")
long <- long[order(long$period, long$subject), ]
epi_panel <- data.frame(
  indicator = "seizures",
  ward = sprintf("patient%02d", long$subject),
  group = ifelse(long$trt == "progabide", "nbi", "benchmark"),
  pair = "",
  period = long$period,
  period_label = ifelse(long$period == 0, "baseline", paste0("visit", long$period)),
  post = as.integer(long$period > 0),
  count = long$count,
  exposure = long$exposure,                               # in 2-week units: 4 for the 8-week baseline
  zage = fmt(long$zage),
  age = long$age
)
stopifnot(nrow(epi_panel) == 59 * 5)
write.csv(epi_panel, file.path(here, "epilepsy_panel.csv"), row.names = FALSE, quote = FALSE)

# ---------------------------------------------------------------- 3. Gaussian, unequal change SD
RNGkind("Mersenne-Twister", "Inversion", "Rejection")
set.seed(20240613)
truth <- list(n_nbi = 20L, n_benchmark = 309L, mu = 3.0, sd_level = 0.5, period = 0.3,
              group = 0.2, did = 0.25, sd_change_nbi = 0.2, sd_change_benchmark = 1.0,
              sd_meas_min = 0.05, sd_meas_max = 0.25)
nT <- truth$n_nbi; nC <- truth$n_benchmark; nW <- nT + nC
treated <- c(rep(1L, nT), rep(0L, nC))
ward <- c(sprintf("T%02d", seq_len(nT)), sprintf("C%03d", seq_len(nC)))
a <- rnorm(nW, 0, truth$sd_level)
c_w <- rnorm(nW, 0, ifelse(treated == 1, truth$sd_change_nbi, truth$sd_change_benchmark))
rows <- list()
for (t in 0:1) {
  sdm <- runif(nW, truth$sd_meas_min, truth$sd_meas_max)  # known measurement SD of each mean
  e <- rnorm(nW, 0, sdm)
  y <- truth$mu + a + truth$period * t + truth$group * treated + truth$did * treated * t +
    c_w * t + e
  rows[[t + 1]] <- data.frame(
    indicator = "score", ward = ward, group = ifelse(treated == 1, "nbi", "benchmark"),
    pair = "", period = t, period_label = ifelse(t == 0, "before", "after"), post = t,
    value = fmt(y), sd = fmt(sdm), synthetic = "true"
  )
}
gauss_panel <- do.call(rbind, rows)
write.csv(gauss_panel, file.path(here, "gaussian_panel.csv"), row.names = FALSE, quote = FALSE)
writeLines(jsonlite::toJSON(c(truth, list(seed = 20240613L,
                                          rng = paste(RNGkind(), collapse = "/"))),
                            auto_unbox = TRUE, pretty = TRUE, digits = NA),
           file.path(here, "gaussian_truth.json"))
cat("wrote seeds_panel.csv, epilepsy_panel.csv, gaussian_panel.csv, gaussian_truth.json\n")
