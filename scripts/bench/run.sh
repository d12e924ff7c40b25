#!/usr/bin/env bash
# run.sh — `make bench`: dlua against PyTorch, both on one thread, one table
# on stdout and in BENCHMARKS.md.
#
# Adding a workload: drop two scripts into scripts/bench/,
#   <name>.lua   run as `dlua <name>.lua [ARGS]`
#   <name>.py    run as `/usr/bin/python3 <name>.py [ARGS]`
# each printing one line per figure:
#   RESULT <workload> <impl> <value> <unit>
# - impl: `dlua` / `pytorch` (one table row), `dlua_<v>` / `pytorch_<v>` (a
#   further row "<workload> (<v>)"), or another name (e.g. `cblas`): a
#   reference figure each dlua row of the workload is compared with.
# - unit: a rate ending in "/s" (GFLOP/s, GB/s: higher is better) or a time
#   (ns/op, ms: lower is better).
# - Each script pins one thread itself (dl.set_num_threads(1) /
#   torch.set_num_threads(1)); run.sh also exports OMP_NUM_THREADS=1 and
#   OPENBLAS_NUM_THREADS=1. Time with CPU time (os.clock /
#   time.process_time), warm up first, and report the best of a few batches.
# - Keep one run of a script under ~10 s (PyTorch's import costs ~3 s
#   here); optional ITERS go in the ARGS table below. A run past
#   BENCH_TIMEOUT seconds counts as failed.
# run.sh runs each pair BENCH_ROUNDS times (default 5), alternating which side
# goes first, and reports the median of each figure. Workloads run in ORDER
# below, then any other pairs in name order.
#
# Environment: DLUA (the binary; default $BINDIR/dlua, else bin/dlua),
# PYTHON (default /usr/bin/python3, Debian's PyTorch), BENCH_ROUNDS,
# BENCH_TIMEOUT (default 60), BENCH_OUT (default BENCHMARKS.md at the root),
# BENCH_ONLY (space-separated workload names, e.g. "tiny_op startup").
# Exit status 1 when any run failed (the table still gets written).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$(dirname "$here")")
cd "$root"

bindir=${BINDIR:-bin}
case $bindir in /*) ;; *) bindir=$root/$bindir ;; esac
dlua=${DLUA:-$bindir/dlua}
case $dlua in /*) ;; *) dlua=$root/$dlua ;; esac
python=${PYTHON:-/usr/bin/python3}
rounds=${BENCH_ROUNDS:-5}
limit=${BENCH_TIMEOUT:-60}
out=${BENCH_OUT:-$root/BENCHMARKS.md}

# scripts that predate the RESULT convention, and iteration counts that keep
# one run short on a 2-core machine
ORDER=(tiny_op matmul64 matmul1024 add1m mlp_step startup)
declare -A ARGS=(
  [tiny_op.lua]=500000 [tiny_op.py]=200000
  [matmul64.lua]=5000 [matmul64.py]=5000
)

bash "$root/scripts/install-deps.sh" --bench
[ -x "$dlua" ] || { echo "bench: no dlua binary at $dlua (run make first)" >&2; exit 1; }

# one thread everywhere: OpenMP loops, OpenBLAS (both its OpenMP build, which
# dlua links, and the pthreads build PyTorch loads) and MKL if present.
# OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are left as the machine has them.
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1

tmp=$(mktemp -d /tmp/dlua-bench.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
raw=$tmp/raw

arch=$(cc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
blas_dir=/usr/lib/$arch/openblas-openmp

# run_side FILE IMPL: one run of one side of a workload, its figures appended
# to $raw as RESULT lines (or one FAIL line). Returns 1 on failure.
run_side() {
  local file=$1 impl=$2 name=${1%.*} log=$tmp/log
  local -a cmd
  case $file in
    # matmul64.sh adds the direct cblas_sgemm floor to the dlua run
    matmul64.lua) cmd=(bash "$here/matmul64.sh" "$dlua") ;;
    *.lua) cmd=("$dlua" "$here/$file") ;;
    *.py) cmd=("$python" "$here/$file") ;;
  esac
  [ -n "${ARGS[$file]:-}" ] && cmd+=("${ARGS[$file]}")
  local rc=0
  timeout "$limit" "${cmd[@]}" >"$log" 2>&1 || rc=$?
  if [ $rc -ne 0 ]; then
    local why="exit status $rc"
    [ $rc -eq 124 ] && why="timed out after ${limit}s"
    echo "bench: $file failed ($why):" >&2
    tail -n 5 "$log" | sed 's/^/  /' >&2
    echo "FAIL $name $impl $why" >>"$raw"
    return 1
  fi
  # normalise: tiny_op prints "tiny-op <ns>"; matmul64 names itself
  # "matmul64" and the cblas line carries a checksum after the unit
  awk -v impl="$impl" -v name="$name" '
    name == "tiny_op" && $1 == "tiny-op" && NF == 2 { print "RESULT tiny-op", impl, $2, "ns/op"; next }
    $1 == "RESULT" && NF >= 5 {
      if ($2 == "matmul64") $2 = "matmul-64"
      print $1, $2, $3, $4, $5
    }' "$log" >"$log.r"
  if [ ! -s "$log.r" ]; then
    echo "bench: $file printed no RESULT line" >&2
    echo "FAIL $name $impl no RESULT line" >>"$raw"
    return 1
  fi
  cat "$log.r" >>"$raw"
}

# startup.py alternates both sides itself (15 runs each) and times
# $root/bin/dlua, found from its own path; a shim root whose bin/dlua is the
# binary under test makes it time that one.
run_startup() {
  local shim=$tmp/shim
  mkdir -p "$shim/bin" "$shim/scripts/bench"
  ln -sf "$dlua" "$shim/bin/dlua"
  ln -sf "$here/startup.py" "$shim/scripts/bench/startup.py"
  if ! timeout "$limit" "$python" "$shim/scripts/bench/startup.py" >"$tmp/log" 2>&1; then
    echo "bench: startup.py failed:" >&2
    tail -n 5 "$tmp/log" | sed 's/^/  /' >&2
    echo "FAIL startup dlua startup.py failed" >>"$raw"
    return 1
  fi
  awk '$1 == "RESULT" && $2 == "startup" && $5 == "s" {
         printf "RESULT startup %s %.2f ms\n", $3, $4 * 1000 }' "$tmp/log" >>"$raw"
}

# the workloads: ORDER first, then every other <name>.lua with a <name>.py
names=()
for n in "${ORDER[@]}"; do names+=("$n"); done
for f in "$here"/*.lua; do
  n=$(basename "$f" .lua)
  [ -f "$here/$n.py" ] || continue
  case " ${ORDER[*]} " in *" $n "*) continue ;; esac
  names+=("$n")
done
if [ -n "${BENCH_ONLY:-}" ]; then
  keep=()
  for n in "${names[@]}"; do
    case " $BENCH_ONLY " in *" $n "*) keep+=("$n") ;; esac
  done
  names=("${keep[@]}")
fi

load=$(cut -d' ' -f1-3 /proc/loadavg)
start=$SECONDS
: >"$raw"
for n in "${names[@]}"; do
  t0=$SECONDS
  if [ "$n" = startup ]; then
    run_startup || true
  else
    for ((r = 1; r <= rounds; r++)); do
      # alternate who goes first, so neither side always inherits a warm
      # (or a busy) machine from the other
      if ((r % 2)); then sides=("$n.lua dlua" "$n.py pytorch"); else sides=("$n.py pytorch" "$n.lua dlua"); fi
      ok=1
      for s in "${sides[@]}"; do
        # shellcheck disable=SC2086
        run_side $s || ok=0
      done
      ((ok)) || break # a broken script fails once, not five times
    done
  fi
  echo "bench: $n done in $((SECONDS - t0)) s" >&2
done

status=0
table=$(lua5.4 "$here/report.lua" "$raw") || status=1

# what the figures were measured on
cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
cores=$(getconf _NPROCESSORS_ONLN) # nproc would obey OMP_NUM_THREADS
blas="OpenBLAS: unknown (blas_info.c did not build)"
if "${CC:-cc}" -std=gnu11 -O2 -o "$tmp/blas_info" "$here/blas_info.c" \
  -L"$blas_dir" -Wl,-rpath,"$blas_dir" -lopenblas; then
  blas=$("$tmp/blas_info")
fi
torch_blas=$("$python" "$here/torch_info.py" 2>/dev/null || echo "PyTorch: not importable")
commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
blas_env=""
for v in OPENBLAS_CORETYPE OPENBLAS_L2_SIZE; do
  [ -n "${!v:-}" ] && blas_env+=" $v=${!v}"
done

{
  echo "# dlua benchmarks"
  echo
  echo "Written by \`make bench\` (scripts/bench/run.sh); do not edit by hand."
  echo
  echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC'), dlua commit $commit"
  echo "- CPU: ${cpu:-unknown}, $cores cores online; load average at start: $load"
  echo "- dlua BLAS: $blas"
  echo "- $torch_blas"
  echo "- Threads: one for both (dl.set_num_threads(1), torch.set_num_threads(1)," \
       "OMP_NUM_THREADS=1, OPENBLAS_NUM_THREADS=1)${blas_env:+; environment:$blas_env}"
  echo "- Runs: $rounds processes per side and workload, dlua and PyTorch alternating;" \
       "startup: 15 each. Loops are timed in CPU time (tiny_op.py and startup: wall time)"
  echo "- The machine may be shared: compare ratios, and rerun before trusting a small one."
  echo
  echo "$table"
} >"$out.tmp.$$"
mv -f "$out.tmp.$$" "$out"

echo
echo "$table"
echo
echo "bench: $((SECONDS - start)) s; written to ${out#"$root"/}" >&2
exit $status
