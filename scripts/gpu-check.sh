#!/usr/bin/env bash
# gpu-check.sh [--bundle DIR] — the GPU check, in one go, on a machine with
# an NVIDIA GPU (made for 16 cores and one H100/H200; fits in 8 minutes):
#   0. with --bundle (scripts/gpu-bundle.sh made DIR, here): unpacks its
#      Debian packages with dpkg -x into a private prefix (.gpu-prefix/,
#      never /) and builds and tests against that alone (make DEPS_PREFIX=),
#      for a bare machine without Lua, OpenBLAS, busted or a registry,
#   1. builds dlua with CUDA (make -j16; nvcc must be found),
#   2. runs the GPU specs (spec/cuda_spec.lua) and then the whole suite,
#   3. benchmarks on the GPU: element-wise bandwidth (a + b, a:mul_(2)) on
#      256 MB float32 tensors against the copy bandwidth (b:copy_(a)); a
#      4096 x 4096 SGEMM through dl.matmul against cuBLAS called directly
#      (scripts/bench/gpu/sgemm_cublas.cu, built here); the fashion-mlp and
#      housing-mlp epochs (scripts/bench/*_mlp.lua --device cuda; the
#      fashion_mlp.lua --synthetic when the
#      Fashion-MNIST files are missing); and the same workloads in PyTorch
#      when `import torch` works and torch.cuda.is_available(),
#   4. prints a short table last (workload, dlua, PyTorch, ratio, card).
# Logs and the table go to $GPU_CHECK_DIR (default $OUT/gpu-check when OUT
# is set, else runs/gpu-check). Without a GPU it stops after the build and
# the GPU spec's logic run with the CPU in the GPU's place.
# Exit status: 0 all passed; 1 a build, a spec or a benchmark failed;
# 2 no CUDA device (or no nvcc); 124 the 8-minute limit ran out.
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 1

# the whole script under one limit (GPU_CHECK_LIMIT seconds, default 470)
if [ -z "${GPU_CHECK_INNER:-}" ]; then
  GPU_CHECK_INNER=1 timeout -k 10 "${GPU_CHECK_LIMIT:-470}" bash "$0" "$@"
  rc=$?
  [ $rc -eq 124 ] && echo "gpu-check: stopped after ${GPU_CHECK_LIMIT:-470} s (the 8-minute budget)" >&2
  exit $rc
fi

bundle=""
if [ "${1:-}" = "--bundle" ]; then
  bundle=$(cd "${2:?gpu-check: --bundle needs a directory}" && pwd)
  shift 2
fi
out=${GPU_CHECK_DIR:-${OUT:+$OUT/gpu-check}}
out=${out:-runs/gpu-check}
mkdir -p "$out"
JOBS=${JOBS:-16}
PY=${PYTHON:-python3}
t_start=$(date +%s)
failures=0
say() { printf '== %s (%ds)\n' "$*" $(($(date +%s) - t_start)); }
fail() { echo "gpu-check: FAILED: $*" >&2; failures=$((failures + 1)); }

# ---- 0. the carried packages, unpacked into a private prefix
MAKEVARS=()
if [ -n "$bundle" ]; then
  prefix=${GPU_CHECK_PREFIX:-$root/.gpu-prefix}
  say "unpacking $(ls "$bundle"/debs/*.deb | wc -l) packages from $bundle into $prefix"
  rm -rf "$prefix"
  mkdir -p "$prefix"
  for deb in "$bundle"/debs/*.deb; do dpkg -x "$deb" "$prefix" || { fail "dpkg -x $deb"; exit 1; }; done
  ma=$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
  export PATH="$prefix/usr/bin:$PATH"
  export LD_LIBRARY_PATH="$prefix/usr/lib/$ma:$prefix/usr/lib/$ma/openblas-openmp${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  export LUA_PATH="$prefix/usr/share/lua/5.4/?.lua;$prefix/usr/share/lua/5.4/?/init.lua;;"
  export LUA_CPATH="$prefix/usr/lib/$ma/lua/5.4/?.so;;"
  MAKEVARS=(DEPS_PREFIX="$prefix")
  # Open MPI from the bundle: Debian names its tools through alternatives
  # (mpicc -> mpicc.openmpi), and OPAL_PREFIX relocates its /usr
  if [ -x "$prefix/usr/bin/mpicc.openmpi" ]; then
    for t in mpicc mpirun; do ln -sf "$t.openmpi" "$prefix/usr/bin/$t"; done
    export OPAL_PREFIX="$prefix/usr"
    MAKEVARS+=(MPI=1)
  fi
fi
has_gpu=1
if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L 2>/dev/null | grep -q '^GPU '; then has_gpu=0; fi
if ! command -v nvcc >/dev/null 2>&1; then
  if [ -x /usr/local/cuda/bin/nvcc ]; then export PATH="/usr/local/cuda/bin:$PATH"; else
    echo "gpu-check: no nvcc on PATH or in /usr/local/cuda/bin; cannot build the CUDA backend" >&2
    exit 2
  fi
fi
card=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n 1)
say "card: ${card:-none}; $(nvcc --version | tail -n 1)"

# ---- 1. build with CUDA
say "build (make -j$JOBS all ctest ${MAKEVARS[*]})"
if ! make -j"$JOBS" "${MAKEVARS[@]}" all ctest >"$out/build.log" 2>&1; then
  tail -n 40 "$out/build.log"
  fail "make all (log: $out/build.log)"
  exit 1
fi
DLUA=bin/dlua
busted_bin=$(command -v busted || true)
if [ $has_gpu -eq 0 ]; then
  # no GPU: the GPU spec's logic with the CPU in the GPU's place, the API
  # spec's no-device answers, then stop
  say "no CUDA device: the GPU specs' logic on the CPU"
  [ -n "$busted_bin" ] || { fail "busted is not installed"; exit 1; }
  DLUA_SPEC_DEVICE=cpu timeout 150 "$DLUA" "$busted_bin" -o TAP spec/cuda_spec.lua spec/cuda_api_spec.lua \
    >"$out/cuda_spec_cpu.tap" 2>&1 || fail "GPU specs on the CPU (log: $out/cuda_spec_cpu.tap)"
  grep -E -A3 '^not ok ' "$out/cuda_spec_cpu.tap" | head -n 40
  echo "GPU specs on the CPU: $(grep -cE '^ok ' "$out/cuda_spec_cpu.tap") ok, $(grep -cE '^not ok ' \
    "$out/cuda_spec_cpu.tap") not ok"
  echo "gpu-check: no CUDA device (nvidia-smi is missing or lists no GPU); built and checked up to the GPU" >&2
  [ $failures -eq 0 ] || exit 1
  exit 2
fi
if ! "$DLUA" -e 'os.exit(dl.cuda and dl.cuda.is_available() and 0 or 3)' 2>/dev/null; then
  echo "gpu-check: the build has no CUDA device (dl.cuda.is_available() is false); was nvcc found by make?" >&2
  exit 2
fi
name=$("$DLUA" -e 'local ok, n = pcall(function() return dl.cuda.get_device_name() end) io.write(ok and n or "")' \
  2>/dev/null)
[ -n "$name" ] && card=$name

# ---- 2. specs
say "GPU specs (spec/cuda_spec.lua, spec/cuda_api_spec.lua, spec/dist_spec.lua: NCCL)"
gpu_specs="not run"
if [ -z "$busted_bin" ]; then
  fail "busted is not installed"
else
  timeout 150 "$DLUA" "$busted_bin" -o TAP spec/cuda_spec.lua spec/cuda_api_spec.lua spec/dist_spec.lua \
    >"$out/cuda_spec.tap" 2>&1
  src=$?
  ok=$(grep -cE '^ok ' "$out/cuda_spec.tap")
  skip=$(grep -cE '^ok [0-9]+ - # SKIP' "$out/cuda_spec.tap")
  bad=$(grep -cE '^not ok ' "$out/cuda_spec.tap")
  grep -E -A3 '^not ok ' "$out/cuda_spec.tap" | head -n 60
  gpu_specs="$((ok - skip)) passed, $bad failed, $skip skipped"
  echo "GPU specs: $gpu_specs"
  if [ "$bad" -ne 0 ] || [ $src -ne 0 ] || [ "$skip" -ne 0 ]; then fail "GPU specs ($gpu_specs, status $src)"; fi

  say "whole suite (make test)"
  timeout 200 make -j"$JOBS" "${MAKEVARS[@]}" test >"$out/test.log" 2>&1
  trc=$?
  suite=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$out/test.log" | tail -n 1)
  echo "suite: ${suite:-no summary (status $trc)}"
  if [ $trc -ne 0 ]; then grep -E -A3 '^not ok ' "$out/test.log" | head -n 40; fail "make test (log: $out/test.log)"; fi
fi

# ---- 3. benchmarks
export BENCH_CLOCK=wall BENCH_THREADS=1
results="$out/results.txt"
: >"$results"
torch_ok=0
if "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' >/dev/null 2>&1; then
  torch_ok=1
  torch_ver=$("$PY" -c 'import torch; print(torch.__version__)' 2>/dev/null)
  say "PyTorch $torch_ver with CUDA: its twins run too"
else
  say "no PyTorch with CUDA here: dlua figures only"
fi

# run LIMIT CMD...: RESULT lines into $results, the rest into the log
bench() {
  local limit=$1 label=$2
  shift 2
  echo "-- $label: $*" >>"$out/bench.log"
  local tmp
  tmp=$(mktemp)
  timeout "$limit" "$@" >"$tmp" 2>>"$out/bench.log"
  local rc=$?
  cat "$tmp" >>"$out/bench.log"
  grep -E '^RESULT ' "$tmp" >>"$results"
  rm -f "$tmp"
  if [ $rc -ne 0 ]; then fail "$label (status $rc; log: $out/bench.log)"; fi
}

say "bench: element-wise bandwidth on 256 MB tensors"
bench 60 "bandwidth (dlua)" "$DLUA" scripts/bench/gpu/bandwidth.lua
[ $torch_ok -eq 1 ] && bench 60 "bandwidth (PyTorch)" "$PY" scripts/bench/gpu/bandwidth.py

say "bench: 4096 SGEMM"
if nvcc -O2 -o "$out/sgemm_cublas" scripts/bench/gpu/sgemm_cublas.cu -lcublas >>"$out/bench.log" 2>&1; then
  bench 60 "sgemm (cuBLAS direct)" "$out/sgemm_cublas" 4096 10
else
  fail "building scripts/bench/gpu/sgemm_cublas.cu"
fi
bench 60 "sgemm (dlua)" "$DLUA" scripts/bench/gpu/sgemm.lua
[ $torch_ok -eq 1 ] && bench 60 "sgemm (PyTorch)" "$PY" scripts/bench/gpu/sgemm.py

say "bench: fashion-mlp epoch"
if [ -f scripts/bench/fashion_mlp.lua ] &&
  "$DLUA" -e 'dl.datasets.fashion_mnist({split = "train"})' >/dev/null 2>&1; then
  fashion="fashion-mlp"
  bench 120 "fashion-mlp (dlua)" "$DLUA" scripts/bench/fashion_mlp.lua --device cuda --epochs 2
  [ $torch_ok -eq 1 ] && bench 120 "fashion-mlp (PyTorch)" "$PY" scripts/bench/fashion_mlp.py --device cuda --epochs 2
else
  fashion="fashion-mlp-synthetic"
  echo "(no Fashion-MNIST files here: the same model and loop on random data)"
  bench 120 "fashion-mlp synthetic (dlua)" "$DLUA" scripts/bench/fashion_mlp.lua --synthetic --device cuda --epochs 2
  [ $torch_ok -eq 1 ] && bench 120 "fashion-mlp synthetic (PyTorch)" "$PY" scripts/bench/fashion_mlp.py \
    --synthetic --device cuda --epochs 2
fi

say "bench: housing-mlp epoch"
if [ -f scripts/bench/housing_mlp.lua ]; then
  bench 120 "housing-mlp (dlua)" "$DLUA" scripts/bench/housing_mlp.lua --device cuda --epochs 2
  [ $torch_ok -eq 1 ] && bench 120 "housing-mlp (PyTorch)" "$PY" scripts/bench/housing_mlp.py --device cuda --epochs 2
else
  fail "scripts/bench/housing_mlp.lua is missing"
fi

# ---- 4. the table
say "done"
table="$out/table.md"
awk -v card="$card" -v fashion="$fashion" -v specs="$gpu_specs" '
  $1 == "RESULT" { v[$2 " " $3] = $4; u[$2 " " $3] = $5 }
  function has(k) { return (k in v) }
  function fmt(k) { return has(k) ? sprintf("%s %s", v[k], u[k]) : "-" }
  # rate (higher is better): dlua / other; time: other / dlua; > 1: dlua ahead
  function ratio(a, b, rate) {
    if (!has(a) || !has(b) || v[a] == 0 || v[b] == 0) return "-"
    return sprintf("%.2fx", rate ? v[a] / v[b] : v[b] / v[a])
  }
  function row(name, a, b, rate) { printf "| %s | %s | %s | %s |\n", name, fmt(a), fmt(b), ratio(a, b, rate) }
  END {
    printf "GPU check on %s (GPU specs: %s)\n\n", card, specs
    print "| workload | dlua | PyTorch | ratio (dlua vs PyTorch; >1 dlua ahead) |"
    print "|---|---|---|---|"
    row("copy 256 MB (b:copy_(a))", "gpu-bandwidth dlua_copy", "gpu-bandwidth pytorch_copy", 1)
    row("c = a + b, 256 MB", "gpu-bandwidth dlua_add", "gpu-bandwidth pytorch_add", 1)
    row("a:mul_(2), 256 MB", "gpu-bandwidth dlua_mul_", "gpu-bandwidth pytorch_mul_", 1)
    row("sgemm 4096", "gpu-sgemm-4096 dlua", "gpu-sgemm-4096 pytorch", 1)
    row(fashion " epoch", fashion " dlua", fashion " pytorch", 0)
    row("housing-mlp epoch (DataLoader)", "housing-mlp dlua_DataLoader", "housing-mlp pytorch_DataLoader", 0)
    row("housing-mlp epoch (index)", "housing-mlp dlua_index", "housing-mlp pytorch_index", 0)
    print ""
    print "| target | measured | goal |"
    print "|---|---|---|"
    printf "| a + b vs copy bandwidth | %s | >= 0.80 |\n", ratio("gpu-bandwidth dlua_add", "gpu-bandwidth dlua_copy", 1)
    printf "| a:mul_(2) vs copy bandwidth | %s | >= 0.80 |\n",
      ratio("gpu-bandwidth dlua_mul_", "gpu-bandwidth dlua_copy", 1)
    printf "| dl.matmul vs cuBLAS direct (sgemm 4096) | %s | >= 0.90 |\n",
      ratio("gpu-sgemm-4096 dlua", "gpu-sgemm-4096 cublas", 1)
    printf "| %s epoch vs PyTorch | %s | > 1 |\n", fashion, ratio(fashion " dlua", fashion " pytorch", 0)
  }' "$results" >"$table"
echo
cat "$table"
if [ $failures -ne 0 ]; then
  echo "gpu-check: $failures step(s) failed (logs in $out)" >&2
  exit 1
fi
exit 0
