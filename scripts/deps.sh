#!/bin/sh
# Installs the Debian 12 packages kiln builds and tests with, when any is missing.
# Runs apt-get directly as root, through sudo otherwise.
set -eu
packages="cmake ninja-build g++ clang clang-format libclang-rt-14-dev libomp-14-dev ccache pkg-config
  libfmt-dev nlohmann-json3-dev libcli11-dev libxxhash-dev nettle-dev libopenblas-openmp-dev
  libgtest-dev tcc libdnnl-dev"
missing=""
for p in $packages; do
  dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing:$missing"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing
