#!/usr/bin/env bash
# run.sh — `make bench`: dlua against PyTorch, one table on stdout, in
# BENCHMARKS.md and in README's Speed section, and a plot (docs/bench.png).
# The workload list is in workloads.sh.
#
# Adding a workload: drop two scripts into scripts/bench/,
#   <name>.lua   run as `dlua <name>.lua [ARGS]`
#   <name>.py    run as `/usr/bin/python3 <name>.py [ARGS]`
# each printing one line per figure:
#   RESULT <workload> <impl> <value> <unit>
# - impl: `dlua` / `pytorch` (one table row), `dlua_<v>` / `pytorch_<v>` (a
#   further row "<workload> (<v>)"), or another name (e.g. `cblas`): a
#   reference figure each dlua row of the workload is compared with.
# - unit: a rate ending in "/s" (GFLOP/s, GB/s: higher is better), "%" (an
#   accuracy: the table shows the difference in points) or a time (ns/op,
#   us/step, s/epoch, ms, MB: lower is better).
# - Threads and clock come from the environment run.sh sets (bench_util.lua
#   / bench_util.py read it): BENCH_THREADS (1 unless the entry is THREADED
#   in workloads.sh), BENCH_CLOCK (cpu at one thread: os.clock /
#   time.process_time; wall otherwise), OMP_NUM_THREADS,
#   OPENBLAS_NUM_THREADS. Warm up first, report the best of a few batches.
# - Keep one run of a script under ~10 s (PyTorch's import costs ~2 s
#   here); ITERS and other arguments go in workloads.sh's ARGS. A run past
#   BENCH_TIMEOUT seconds counts as failed.
# run.sh runs each entry BENCH_ROUNDS times (default 5), alternating the order
# of the sides (and settings) each round, never two at once, and report.lua
# takes the median of each figure. report.lua also writes the figures the
# plot (plot_ratios.lua) draws.
#
# Environment: DLUA (the binary; default $BINDIR/dlua, else bin/dlua),
# PYTHON (default /usr/bin/python3, Debian's PyTorch), BENCH_ROUNDS,
# BENCH_TIMEOUT (default 120), BENCH_OUT (default BENCHMARKS.md at the root),
# BENCH_README (default README.md at the root; "" leaves it alone),
# BENCH_PLOT (default docs/bench.png; "" draws none), BENCH_MAX_THREADS
# (default 2), BENCH_ONLY (space-separated entries, e.g. "tiny_op startup").
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
limit=${BENCH_TIMEOUT:-120}
out=${BENCH_OUT:-$root/BENCHMARKS.md}
readme=${BENCH_README-$root/README.md}
plot=${BENCH_PLOT-$root/docs/bench.png}

# shellcheck source=workloads.sh
source "$here/workloads.sh"

bash "$root/scripts/install-deps.sh" --bench
[ -x "$dlua" ] || { echo "bench: no dlua binary at $dlua (run make first)" >&2; exit 1; }

# One thread everywhere unless a setting says otherwise: OpenMP loops,
# OpenBLAS (both its OpenMP build, which dlua links, and the pthreads build
# PyTorch loads) and MKL if present. OPENBLAS_L2_SIZE is left as the
# machine has it; OPENBLAS_CORETYPE too, or else set below to the kernels
# dlua selects for this CPU, so PyTorch's OpenBLAS runs the same ones.
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 BENCH_THREADS=1 BENCH_CLOCK=cpu
# importing bench_util.py must leave no __pycache__ in the tree
export PYTHONDONTWRITEBYTECODE=1

# T threads for the THREADED entries: every core, never more (the machine's
# cores, not nproc, which obeys OMP_NUM_THREADS)
cores=$(getconf _NPROCESSORS_ONLN)
threads=$((cores < ${BENCH_MAX_THREADS:-2} ? cores : ${BENCH_MAX_THREADS:-2}))
settings=()
if ((threads > 1)); then mapfile -t settings < <(thread_settings "$threads"); fi

tmp=$(mktemp -d -t dlua-bench.XXXXXX)
trap '[ -n "${hog:-}" ] && kill "$hog" 2>/dev/null; rm -rf "$tmp"' EXIT
raw=$tmp/raw
busy=$tmp/busy
: >"$busy"

arch=$(cc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
blas_dir=/usr/lib/$arch/openblas-openmp

# the OpenBLAS dlua runs, with the kernels dlua selects at load
# (src/cpu/cpu_blas_core.c); PyTorch's OpenBLAS is given the same core
blas="OpenBLAS: unknown (blas_info.c did not build)"
if "${CC:-cc}" -std=gnu11 -O2 -o "$tmp/blas_info" "$here/blas_info.c" "$root/src/cpu/cpu_blas_core.c" \
  -L"$blas_dir" -Wl,-rpath,"$blas_dir" -lopenblas; then
  blas=$("$tmp/blas_info")
  [ -n "${OPENBLAS_CORETYPE:-}" ] || export OPENBLAS_CORETYPE="$("$tmp/blas_info" --core)"
fi
gnu_time=/usr/bin/time
[ -x "$gnu_time" ] || gnu_time=""

# run_side ENTRY SIDE [TAG ENV...]: one run of one side (dlua / pytorch) of
# an entry, in the setting TAG (none: one thread) with its environment; its
# figures go to $raw as RESULT lines (or one FAIL line). Returns 1 on failure.
run_side() {
  local entry=$1 side=$2 tag=${3:-} log=$tmp/log
  shift $(($# < 3 ? $# : 3))
  local script=${SCRIPT[$entry]:-$entry} ext=lua impl=$side
  [ "$side" = pytorch ] && ext=py
  [ -n "$tag" ] && impl=$side@$tag
  local -a cmd
  case $script.$ext in
    # matmul64.sh adds the direct cblas_sgemm floor to the dlua run
    matmul64.lua) cmd=(bash "$here/matmul64.sh" "$dlua") ;;
    *.lua) cmd=("$dlua" "$here/$script.lua") ;;
    *.py) cmd=("$python" "$here/$script.py") ;;
  esac
  # shellcheck disable=SC2206 # ARGS holds words
  [ -n "${ARGS[$entry.$ext]:-}" ] && cmd+=(${ARGS[$entry.$ext]})
  # shellcheck disable=SC2206
  [ -z "$tag" ] && [ "$round" -eq 1 ] && [ -n "${FIRST_ARGS[$entry.$ext]:-}" ] && cmd+=(${FIRST_ARGS[$entry.$ext]})
  local rss_name=""
  if [ -z "$tag" ] && [ -n "${RSS[$entry]:-}" ] && [ -n "$gnu_time" ]; then
    rss_name=${RSS[$entry]}
    cmd=("$gnu_time" -f %M -o "$tmp/rss" "${cmd[@]}")
  fi
  local rc=0
  env "$@" timeout "$limit" "${cmd[@]}" >"$log" 2>&1 || rc=$?
  if [ $rc -ne 0 ]; then
    local why="exit status $rc"
    [ $rc -eq 124 ] && why="timed out after ${limit}s"
    echo "bench: $script.$ext ${tag:+(threads $tag) }failed ($why):" >&2
    tail -n 5 "$log" | sed 's/^/  /' >&2
    echo "FAIL $entry $impl $why" >>"$raw"
    return 1
  fi
  # normalise: tiny_op prints "tiny-op <ns>"; matmul64 names itself
  # "matmul64" and the cblas line carries a checksum after the unit; a
  # setting's tag goes on every impl
  awk -v side="$side" -v tag="$tag" -v name="$script" '
    function tagged(impl) { return tag == "" ? impl : impl "@" tag }
    name == "tiny_op" && $1 == "tiny-op" && NF == 2 { print "RESULT tiny-op", tagged(side), $2, "ns/op"; next }
    $1 == "RESULT" && NF >= 5 {
      if ($2 == "matmul64") $2 = "matmul-64"
      print $1, $2, tagged($3), $4, $5
    }' "$log" >"$log.r"
  if [ ! -s "$log.r" ]; then
    echo "bench: $script.$ext printed no RESULT line" >&2
    echo "FAIL $entry $impl no RESULT line" >>"$raw"
    return 1
  fi
  cat "$log.r" >>"$raw"
  if [ -n "$rss_name" ]; then
    awk -v name="$rss_name" -v impl="$side" 'NF == 1 && $1 + 0 > 0 {
      printf "RESULT %s %s %.1f MB\n", name, impl, $1 / 1024 }' "$tmp/rss" >>"$raw"
  fi
}

# startup.py alternates both sides itself (15 runs each) and times
# $root/bin/dlua, found from its own path; a shim root whose bin/dlua is the
# binary under test makes it time that one.
run_startup() {
  local shim=$tmp/shim
  mkdir -p "$shim/bin" "$shim/scripts/bench"
  ln -sf "$dlua" "$shim/bin/dlua"
  ln -sf "$here/startup.py" "$shim/scripts/bench/startup.py"
  if ! timeout "$limit" "$python" "$shim/scripts/bench/startup.py" "$STARTUP_RUNS" >"$tmp/log" 2>&1; then
    echo "bench: startup.py failed:" >&2
    tail -n 5 "$tmp/log" | sed 's/^/  /' >&2
    echo "FAIL startup dlua startup.py failed" >>"$raw"
    return 1
  fi
  awk '$1 == "RESULT" && $2 == "startup" && $5 == "s" {
         printf "RESULT startup %s %.2f ms\n", $3, $4 * 1000 }' "$tmp/log" >>"$raw"
}

# the PyTorch setting whose figures in this round ($round_start onwards in
# $raw) are best: the least geometric mean of its times (rates inverted)
pytorch_fastest() {
  tail -n +"$round_start" "$raw" | awk '
    $1 == "RESULT" && $3 ~ /^pytorch[^@]*@/ && $4 > 0 {
      tag = substr($3, index($3, "@") + 1)
      v = ($5 ~ /\/s$/) ? -log($4) : log($4)
      sum[tag] += v; n[tag]++
    }
    END {
      for (t in sum) if (best == "" || sum[t] / n[t] < min) { best = t; min = sum[t] / n[t] }
      print best
    }'
}

# run_busy ENTRY WIN: the entry's runs beside one busy process (started
# here, stopped after; the EXIT trap stops it too): dlua and PyTorch at one
# thread and at their multi-thread setting (PyTorch's: WIN, the fastest of
# the first round), wall time, into $busy
hog=""
run_busy() {
  local n=$1 win=$2 raw_main=$raw s
  yes >/dev/null &
  hog=$!
  raw=$busy
  local one="BENCH_THREADS=1 OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 BENCH_CLOCK=wall"
  # shellcheck disable=SC2086 # the environments are words
  run_side "$n" dlua busy1 $one || true
  run_side "$n" pytorch busy1 $one || true
  for s in "${settings[@]}"; do
    set -- $s
    case "$1 $2" in "dlua $threads" | "pytorch $win") ;; *) continue ;; esac
    local side=$1 tag=$2
    shift 2
    run_side "$n" "$side" "busy$tag" "$@" || true
  done
  raw=$raw_main
  kill "$hog" 2>/dev/null
  wait "$hog" 2>/dev/null || true # it ends by the signal
  hog=""
}

# the entries: ORDER first, then every other <name>.lua with a <name>.py
names=("${ORDER[@]}")
for f in "$here"/*.lua; do
  n=$(basename "$f" .lua)
  [ -f "$here/$n.py" ] || continue
  case " ${ORDER[*]} ${HELPERS[*]} " in *" $n "*) continue ;; esac
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
  round_start=$(($(wc -l <"$raw") + 1))
  if [ "$n" = startup ]; then
    run_startup || true
  else
    # the sides of one round: one thread each, then the multi-thread settings
    sides=("dlua" "pytorch")
    case " ${THREADED[*]} " in *" $n "*) sides+=("${settings[@]}") ;; esac
    for ((round = 1; round <= ${ROUNDS[$n]:-$rounds}; round++)); do
      # alternate the order, so no side always inherits a warm (or a busy)
      # machine from another
      order=("${sides[@]}")
      if ((round % 2 == 0)); then
        order=()
        for ((i = ${#sides[@]} - 1; i >= 0; i--)); do order+=("${sides[i]}"); done
      fi
      ok=1
      for s in "${order[@]}"; do
        # shellcheck disable=SC2086 # a setting is "side tag VAR=value..."
        run_side "$n" $s || ok=0
      done
      ((ok)) || break # a broken script fails once, not five times
      if ((round == 1)) && ((threads > 1)); then
        case " ${CONTENDED[*]} " in *" $n "*) busy_win=$(pytorch_fastest) ;; *) busy_win="" ;; esac
      fi
      if ((round == 1 && ${#sides[@]} > 3)); then
        # PyTorch's settings: the fastest of the first round goes on alone
        win=$(pytorch_fastest)
        if [ -n "$win" ]; then
          keep=()
          for s in "${sides[@]}"; do
            case $s in "pytorch $win "* | dlua* | pytorch) keep+=("$s") ;; esac
          done
          sides=("${keep[@]}")
        fi
      fi
    done
    if ((threads > 1)); then
      case " ${CONTENDED[*]} " in *" $n "*) run_busy "$n" "${busy_win:-}" ;; esac
    fi
  fi
  echo "bench: $n done in $((SECONDS - t0)) s" >&2
done

status=0
table=$(lua5.4 "$here/report.lua" "$raw" "$tmp/ratios" "$busy") || status=1

# what the figures were measured on
cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
torch_blas=$("$python" "$here/torch_info.py" 2>/dev/null || echo "PyTorch: not importable")
commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
blas_env=""
for v in OPENBLAS_CORETYPE OPENBLAS_L2_SIZE; do
  [ -n "${!v:-}" ] && blas_env+=" $v=${!v}"
done
elapsed=$((SECONDS - start))
load_end=$(cut -d' ' -f1-3 /proc/loadavg)
threads_note="one for both (dl.set_num_threads(1), torch.set_num_threads(1), OMP_NUM_THREADS=1, OPENBLAS_NUM_THREADS=1)"
if ((threads > 1)); then
  threads_note+="; the $threads-thread columns: dlua dl.set_num_threads($threads), PyTorch the best of"
  threads_note+=" torch threads + OpenBLAS threads = 1+$threads, $threads+1, $threads+$threads"
fi

{
  echo "# dlua benchmarks"
  echo
  echo "Written by \`make bench\` (scripts/bench/run.sh); do not edit by hand."
  echo
  echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC'), dlua commit $commit; the run took $elapsed s"
  echo "- CPU: ${cpu:-unknown}, $cores cores online; load average at start: $load, at the end: $load_end"
  echo "- dlua BLAS: $blas"
  echo "- $torch_blas"
  echo "- Threads: $threads_note${blas_env:+; environment:$blas_env}"
  echo "- Runs: $rounds processes per side, setting and workload, the sides alternating;" \
       "startup: $STARTUP_RUNS each. PyTorch's multi-thread settings: each one run, then the" \
       "fastest the other rounds. One-thread loops are timed in CPU time (tiny_op.py and startup:" \
       "wall time), the multi-thread columns in wall time"
  echo "- The machine may be shared: compare ratios, and rerun before trusting a small one."
  echo
  echo "$table"
} >"$out.tmp.$$"
mv -f "$out.tmp.$$" "$out"

# the plot, then README's copy of the table (between its bench markers)
if [ -n "$plot" ] && [ -s "$tmp/ratios" ]; then
  mkdir -p "$(dirname "$plot")"
  "$dlua" "$here/plot_ratios.lua" "$tmp/ratios" "$plot" || status=1
fi
if [ -n "$readme" ] && [ -f "$readme" ]; then
  {
    echo "Measured $(date -u '+%Y-%m-%d %H:%M UTC') at commit $commit on ${cpu:-unknown}, $cores cores" \
         "(load average $load at the start, $load_end at the end; the run took $elapsed s); details in BENCHMARKS.md."
    echo
    echo "$table"
  } >"$tmp/table"
  lua5.4 "$here/readme_table.lua" "$readme" "$tmp/table" || status=1
fi

echo
echo "$table"
echo
echo "bench: $((SECONDS - start)) s; written to ${out#"$root"/}${plot:+ and ${plot#"$root"/}}" >&2
exit $status
