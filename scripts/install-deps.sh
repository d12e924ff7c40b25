#!/usr/bin/env bash
# Installs from Debian exactly the packages dlua's build and tests need that
# are missing; does nothing (and needs no network) when all are there.
set -euo pipefail
pkgs=(
  build-essential pkg-config
  lua5.4 liblua5.4-dev
  libopenblas-openmp-dev libopenblas0-openmp
  libdnnl-dev
  lua-busted
  zlib1g-dev libedit-dev
  tmux
  dataset-fashion-mnist gnuplot-nox
  fortunes
  openmpi-bin libopenmpi-dev
)
# `make bench` compares against Debian's PyTorch
if [ "${1:-}" = "--bench" ]; then
  pkgs+=(python3-torch hyperfine time)
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
