#!/usr/bin/env bash
# gpu-bundle.sh — run here, before a GPU check: fetches the Debian packages
# that building dlua and running its specs need beyond a CUDA toolkit and a
# C compiler (Lua 5.4 and its headers, the OpenMP OpenBLAS, libedit, zlib's
# headers, busted and the Lua modules it loads, Open MPI) into .gpu-bundle/ (ignored
# by git, carried to the GPU machine), so that
#   scripts/gpu-check.sh --bundle .gpu-bundle
# builds and tests there with no package registry: it unpacks them with
# dpkg -x into a private prefix, never into /. Prints the bundle's size.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$root/.gpu-bundle}
pkgs=(
  lua5.4 liblua5.4-0 liblua5.4-dev
  libopenblas0-openmp libopenblas-openmp-dev libgfortran5
  libedit2 libedit-dev libbsd0 libmd0
  zlib1g-dev
  lua-busted lua-cliargs lua-dkjson lua-filesystem lua-luassert lua-mediator lua-penlight lua-say lua-system
  lua-term lua-inifile lua-yaml libyaml-0-2
  # Open MPI for dl.dist (the multi-GPU NCCL spec bootstraps through it):
  # the runtime and mpicc, relocated by OPAL_PREFIX in gpu-check.sh
  openmpi-bin openmpi-common libopenmpi3 libopenmpi-dev libpmix2 libhwloc15 libhwloc-plugins libevent-2.1-7
  libevent-core-2.1-7 libevent-pthreads-2.1-7 libfabric1 libucx0 libibverbs1 librdmacm1 libnl-3-200
  libnl-route-3-200 libpsm2-2 libpsm-infinipath1 libnuma1 libltdl7 libxnvctrl0 libmunge2 libpciaccess0
)
[ "$(dpkg --print-architecture)" = amd64 ] || { echo "gpu-bundle: the GPU machines are amd64; this is not" >&2; exit 1; }
rm -rf "$dir"
mkdir -p "$dir/debs"
cd "$dir/debs"
if ! apt-get download "${pkgs[@]}" >/dev/null 2>"$dir/download.log"; then
  apt-get update -qq && apt-get download "${pkgs[@]}" >/dev/null
fi
ls *.deb >"$dir/packages.txt"
echo "gpu-bundle: $(ls *.deb | wc -l) packages, $(du -sh "$dir" | cut -f1) in $dir"
