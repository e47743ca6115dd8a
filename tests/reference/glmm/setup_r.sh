#!/usr/bin/env bash
# Install R, brms, lme4 and rstan from Debian (bookworm) and work around Debian's BH.
#
# Debian's r-cran-bh installs BH's R metadata but not its include/ folder (it depends on
# libboost-dev instead, whose headers are in /usr/include/boost). rstan asks R for
# system.file("include", package = "BH") when it compiles a Stan model and stops with
# "Boost not found; call install.packages('BH')" when that folder is missing. This script
# makes a private R library, NBDID_R_LIB (default /opt/nbdid-r-lib), holding a copy of the
# installed BH package with an include/ folder whose only entry is a symlink
#     include/boost -> /usr/include/boost
# (symlinking include/ itself to /usr/include would put -I/usr/include on the compiler's
# command line, which breaks libstdc++'s #include_next). The R scripts in this folder put
# NBDID_R_LIB first on .libPaths(), so R finds this BH before the system one.
#
# Usage (as root, from anywhere):  bash tests/reference/glmm/setup_r.sh
set -euo pipefail
lib="${NBDID_R_LIB:-/opt/nbdid-r-lib}"
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends \
  r-base-core r-base-dev r-cran-brms r-cran-lme4 r-cran-rstan r-cran-mass r-cran-jsonlite \
  libboost-dev
mkdir -p "$lib"
rm -rf "$lib/BH"
cp -a /usr/lib/R/site-library/BH "$lib/BH"
mkdir -p "$lib/BH/include"
ln -sfn /usr/include/boost "$lib/BH/include/boost"
R_LIBS="$lib" Rscript -e 'cat("BH include:", system.file("include", package = "BH"), "\n")'
