# Reference numbers for nbdid's ward-clustered GLMs, computed independently in R.
#
# Reads panel.csv (written by make_panel.py), fits for each indicator
#   binomial: glm(cbind(count, exposure - count) ~ nbi * post, family = binomial)
#   poisson:  glm(count ~ nbi * post + offset(log(exposure)), family = poisson)
#   price:    lm(mean_log_price ~ nbi * post, weights = n)
# and computes the cluster-robust covariance by ward with sandwich::vcovCL
# (type = "HC1", cadjust = TRUE: the CR1 factor G/(G-1) * (N-1)/(N-K)), with t tests
# and 95% intervals on G - 1 degrees of freedom (lmtest::coeftest / coefci).
#
# Usage (from the repository root):  Rscript tests/reference/cluster_glm/make_reference.R
# Needs: R >= 4.2, sandwich >= 3.0, lmtest >= 0.9 (Debian: r-cran-sandwich r-cran-lmtest).

suppressPackageStartupMessages({
  library(sandwich)
  library(lmtest)
})

args <- commandArgs(trailingOnly = FALSE)
file_arg <- sub("^--file=", "", args[grep("^--file=", args)])
here <- if (length(file_arg)) dirname(normalizePath(file_arg)) else "."

panel <- read.csv(file.path(here, "panel.csv"), stringsAsFactors = FALSE)
panel$nbi <- as.integer(panel$group == "nbi")
families <- c(out_of_work_benefits = "binomial", crime = "poisson", property_price = "price")

rows <- list()
for (key in names(families)) {
  d <- panel[panel$indicator == key, ]
  fam <- families[[key]]
  fit <- switch(
    fam,
    binomial = glm(cbind(count, exposure - count) ~ nbi * post, family = binomial, data = d),
    poisson = glm(count ~ nbi * post + offset(log(exposure)), family = poisson, data = d),
    price = lm(mean_log_price ~ nbi * post, weights = n, data = d)
  )
  G <- length(unique(d$ward))
  V <- vcovCL(fit, cluster = ~ward, type = "HC1", cadjust = TRUE)
  ct <- coeftest(fit, vcov. = V, df = G - 1)
  ci <- coefci(fit, vcov. = V, df = G - 1, level = 0.95)
  terms <- c("(Intercept)" = "const", "nbi" = "nbi", "post" = "post", "nbi:post" = "nbi:post")
  for (term in rownames(ct)) {
    rows[[length(rows) + 1]] <- data.frame(
      indicator = key, family = fam, term = terms[[term]],
      estimate = ct[term, 1], std_error = ct[term, 2], t = ct[term, 3], p_value = ct[term, 4],
      lower = ci[term, 1], upper = ci[term, 2], df = G - 1, nobs = nrow(d), clusters = G
    )
  }
}
out <- do.call(rbind, rows)
write.csv(out, file.path(here, "reference.csv"), row.names = FALSE)
cat(sprintf("R %s, sandwich %s, lmtest %s\n", getRversion(), packageVersion("sandwich"),
            packageVersion("lmtest")))
print(out, digits = 6)
