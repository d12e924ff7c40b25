#!/usr/bin/env bash
# spec/run.sh DLUA BUILD LIBDIR — runs the C unit tests and the busted specs, then
# prints one closing line "N passed, M failed, K skipped" over both (skips are
# busted's pending tests, e.g. the GPU specs on a machine without a device).
set -u
dlua=${1:-bin/dlua}
build=${2:-build}
libdir=${3:-lib}
pass=0
fail=0

echo "== C unit tests"
for t in "$build"/ctest/test_*; do
  [ -x "$t" ] || continue
  out=$("$t" 2>&1)
  rc=$?
  echo "$out" | tail -n 20
  line=$(echo "$out" | grep -E '^ctest .*: [0-9]+ passed, [0-9]+ failed$' | tail -n 1)
  if [ -n "$line" ]; then
    p=$(echo "$line" | sed -E 's/.*: ([0-9]+) passed, ([0-9]+) failed/\1/')
    f=$(echo "$line" | sed -E 's/.*: ([0-9]+) passed, ([0-9]+) failed/\2/')
    pass=$((pass + p))
    fail=$((fail + f))
  fi
  if [ $rc -ne 0 ] && { [ -z "$line" ] || [ "${f:-0}" -eq 0 ]; }; then
    echo "$t exited with status $rc"
    fail=$((fail + 1))
  fi
done

echo "== embedding host example"
if "$build"/host_example; then pass=$((pass + 1)); else echo "host_example failed"; fail=$((fail + 1)); fi

echo "== the engine from C alone (host_train)"
if "$build"/host_train; then pass=$((pass + 1)); else echo "host_train failed"; fail=$((fail + 1)); fi

echo "== reader fuzzers, 20000 inputs each (make fuzz runs them long)"
for f in npy safetensors idx idxgz csv checkpoint; do
  if "$build"/fuzz/fuzz_readers "$f" 20000; then pass=$((pass + 1)); else echo "fuzz_readers $f failed"; fail=$((fail + 1)); fi
done

echo "== bad-input sweep (spec/sweep: every public name, each argument replaced by bad values)"
# run from an empty directory: calls given a string where a path goes write there
sweep_dir=$(mktemp -d)
dlua_abs=$(cd "$(dirname "$dlua")" && pwd)/$(basename "$dlua")
for mode in --self-test ""; do
  # the stand-in CUDA plugin gives the sweep tensors on another device
  if (cd "$sweep_dir" && DLUA_CUDA_PLUGIN="$OLDPWD/$build/ctest/libfake_cuda.so" \
      timeout 600 "$dlua_abs" "$OLDPWD/spec/sweep/sweep.lua" $mode >sweep.log 2>&1); then
    pass=$((pass + 1))
    tail -n 1 "$sweep_dir/sweep.log"
  else
    grep -E '^FAIL' "$sweep_dir/sweep.log" | head -n 40
    tail -n 5 "$sweep_dir/sweep.log"
    echo "sweep $mode failed"
    fail=$((fail + 1))
  fi
done
rm -rf "$sweep_dir"

echo "== busted specs (run by $dlua)"
# specs find the program, build tree and Lua module through these
export DLUA_BIN="$dlua" DLUA_BUILD="$build" DLUA_LIBDIR="$libdir"
tap=$(mktemp)
"$dlua" "$(command -v busted)" -o TAP spec/ >"$tap" 2>&1
rc=$?
grep -vE '^ok ' "$tap"
# pending tests come out as "ok N - # SKIP reason": shown and counted apart
grep -E '^ok [0-9]+ - # SKIP' "$tap"
bs=$(grep -cE '^ok [0-9]+ - # SKIP' "$tap")
bp=$(($(grep -cE '^ok ' "$tap") - bs))
bf=$(grep -cE '^not ok ' "$tap")
pass=$((pass + bp))
fail=$((fail + bf))
if [ $rc -ne 0 ] && [ "$bf" -eq 0 ]; then
  echo "busted exited with status $rc"
  fail=$((fail + 1))
fi
rm -f "$tap"
echo "$pass passed, $fail failed, $bs skipped"
[ "$fail" -eq 0 ]
