#!/usr/bin/env bash
# gemm_engines.sh [THREADS...] — OpenBLAS against oneDNN's sgemm on the
# shapes dlua's float32 GEMM dispatch was chosen on (gemm_engines.c), at
# one and two threads by default. Needs libdnnl-dev.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
arch=$(cc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
blas_dir=/usr/lib/$arch/openblas-openmp
blas_inc=/usr/include/$arch/openblas-openmp
exe=$(mktemp -t gemm_engines.XXXXXX)
trap 'rm -f "$exe"' EXIT
cc -std=gnu11 -O2 -fopenmp -I"$blas_inc" -o "$exe" "$here/gemm_engines.c" \
  -L"$blas_dir" -Wl,-rpath,"$blas_dir" -lopenblas -ldnnl
for t in "${@:-1 2}"; do
  for n in $t; do "$exe" "$n"; done
done
