#!/usr/bin/env bash
# matmul64.sh [DLUA] [ITERS] — 64x64 float32 matmul, dlua (a:matmul(b) in a
# Lua loop) against cblas_sgemm called from C; both on one thread, linked
# against the same OpenMP OpenBLAS as the Makefile uses.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$(dirname "$here")")
dlua=${1:-$root/bin/dlua}
iters=${2:-20000}
arch=$(cc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
blas_dir=/usr/lib/$arch/openblas-openmp
blas_inc=/usr/include/$arch/openblas-openmp
exe=$(mktemp -t matmul64_blas.XXXXXX)
trap 'rm -f "$exe"' EXIT
cc -std=gnu11 -O2 -march=native -I"$blas_inc" -o "$exe" "$here/matmul64_blas.c" \
  -L"$blas_dir" -Wl,-rpath,"$blas_dir" -lopenblas -fopenmp
OMP_NUM_THREADS=1 "$exe" "$iters"
OMP_NUM_THREADS=1 "$dlua" "$here/matmul64.lua" "$iters"
