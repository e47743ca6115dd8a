// Problem 3 with the ward effects integrated out (two periods).
//
// Per ward w, (value[w,0], value[w,1]) is bivariate normal with
//   mean   (intercept + group_effect * nbi,  intercept + group_effect * nbi + post_effect + did * nbi)
//   cov    [ sw^2 + e0^2     sw^2                 ]
//          [ sw^2            sw^2 + sc_g^2 + e1^2 ]
// where sw = sigma_ward, sc_g = the change SD of the ward's group (or the shared one), and
// e_t = the known SD of the row (known_sd = 1) or the residual SD sigma (known_sd = 0).
// This is the brms model of fit_gaussian.R (value ~ 0 + Intercept + post + nbi + did +
// (1 | ward) + (0 + post | [gr(ward, by = group) | ward])) with u and v integrated out, so
// the posterior of every parameter below is the same.
data {
  int<lower=1> N;
  vector[N] y0;
  vector[N] y1;
  vector<lower=0>[N] s0;
  vector<lower=0>[N] s1;
  int<lower=0, upper=1> nbi[N];
  int<lower=0, upper=1> known_sd;
  int<lower=0, upper=1> group_sd;
}
parameters {
  real intercept;
  real post_effect;
  real group_effect;
  real did;
  real<lower=0> sigma_ward;
  real<lower=0> sigma_change[1 + group_sd];   // [benchmark, nbi] when group-specific
  real<lower=0> sigma[1 - known_sd];
}
model {
  intercept ~ normal(0, 5);
  post_effect ~ normal(0, 5);
  group_effect ~ normal(0, 5);
  did ~ normal(0, 5);
  sigma_ward ~ normal(0, 1);
  sigma_change ~ normal(0, 1);
  sigma ~ normal(0, 1);
  {
    real vw = square(sigma_ward);
    for (w in 1:N) {
      real m0 = intercept + group_effect * nbi[w];
      real m1 = m0 + post_effect + did * nbi[w];
      real sc = sigma_change[group_sd == 1 ? 1 + nbi[w] : 1];
      real v0 = vw + (known_sd == 1 ? square(s0[w]) : square(sigma[1]));
      real v1 = vw + square(sc) + (known_sd == 1 ? square(s1[w]) : square(sigma[1]));
      real det = v0 * v1 - square(vw);
      real r0 = y0[w] - m0;
      real r1 = y1[w] - m1;
      target += -log(2 * pi()) - 0.5 * log(det)
                - 0.5 * (v1 * square(r0) - 2 * vw * r0 * r1 + v0 * square(r1)) / det;
    }
  }
}
