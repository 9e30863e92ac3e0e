#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, -fsanitize=fuzzer,address,undefined)
# and runs each for a bounded time.
#
#   fuzz/run.sh [SECONDS] [TARGET...]
#
# SECONDS per target (default $LAMINA_FUZZ_SECONDS, else 30); TARGETs among
# idx npy npz csv keras_config keras_archive h5_weights (default: all).
# Environment: LAMINA_FUZZ_BUILD (build folder, default build-fuzz),
# LAMINA_FUZZ_NO_BUILD=1 (use the built targets as they are),
# LAMINA_FUZZ_TIMEOUT (seconds one input may take, default 20),
# LAMINA_FUZZ_RSS_MB (memory limit, default 2048), LAMINA_FUZZ_ARGS (more
# libFuzzer flags).
#
# Each target starts from its seeds (fuzz/corpus/<t>) and the kept crash
# inputs (fuzz/regressions/<t>); inputs it finds go to <build>/fuzz-corpus/<t>
# and carry over to the next run. A crash, leak, timeout or out-of-memory
# input is kept in <build>/fuzz-artifacts/<t>/ and makes the script exit 1
# (after the other targets ran). Then: minimise it, fix the parser, and add
# the input to fuzz/regressions/<t>/, which tests/test_fuzz_regressions.c
# replays in every ctest run:
#   <build>/fuzz/fuzz_<t> -minimize_crash=1 -max_total_time=60 \
#       -exact_artifact_path=fuzz/regressions/<t>/NAME CRASH_FILE
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
all="idx npy npz csv keras_config keras_archive h5_weights"

secs=${LAMINA_FUZZ_SECONDS:-30}
if [ $# -gt 0 ]; then
  case $1 in
    -h | --help)
      sed -n '2,/^set -uo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *[!0-9]*) ;;
    *)
      secs=$1
      shift
      ;;
  esac
fi
targets=${*:-$all}
for t in $targets; do
  case " $all " in
    *" $t "*) ;;
    *)
      echo "fuzz/run.sh: unknown target '$t' (targets: $all)" >&2
      exit 2
      ;;
  esac
done

build=${LAMINA_FUZZ_BUILD:-build-fuzz}
case $build in /*) ;; *) build=$root/$build ;; esac
if [ "${LAMINA_FUZZ_NO_BUILD:-0}" != 1 ]; then
  if ! command -v clang >/dev/null; then
    echo "fuzz/run.sh: clang is required (libFuzzer)" >&2
    exit 2
  fi
  CC=clang cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DLAMINA_FUZZ=ON -DLAMINA_BUILD_TESTS=OFF -DLAMINA_BUILD_BENCH=OFF \
    -DLAMINA_BUILD_EXAMPLES=OFF >/dev/null || exit 2
  cmake --build "$build" --target $(for t in $targets; do printf 'fuzz_%s ' "$t"; done) || exit 2
fi

# One thread per kernel; leaks are findings; UBSan stops at the first report.
export OMP_NUM_THREADS=1
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

failed=""
for t in $targets; do
  bin=$build/fuzz/fuzz_$t
  work=$build/fuzz-corpus/$t
  art=$build/fuzz-artifacts/$t
  mkdir -p "$work" "$art"
  dirs=("$work" "fuzz/corpus/$t")
  [ -d "fuzz/regressions/$t" ] && dirs+=("fuzz/regressions/$t")
  dict=()
  [ -f "fuzz/dict/$t.dict" ] && dict=("-dict=fuzz/dict/$t.dict")
  echo "== fuzz_$t: ${secs}s"
  # shellcheck disable=SC2086
  "$bin" -max_total_time="$secs" -timeout="${LAMINA_FUZZ_TIMEOUT:-20}" \
    -rss_limit_mb="${LAMINA_FUZZ_RSS_MB:-2048}" -artifact_prefix="$art/" \
    -print_final_stats=1 "${dict[@]}" ${LAMINA_FUZZ_ARGS:-} "${dirs[@]}" >"$art/log" 2>&1
  rc=$?
  grep -E '^(#[0-9]+[[:space:]]+DONE|stat::number_of_executed_units|Done [0-9]+ runs)' "$art/log" | tail -2
  if [ $rc -ne 0 ]; then
    echo "fuzz_$t FAILED (exit $rc): log $art/log" >&2
    grep -E 'ERROR:|SUMMARY:|runtime error|fuzz check failed|Test unit written' "$art/log" | head -20 >&2
    failed="$failed $t"
  fi
done

if [ -n "$failed" ]; then
  echo "fuzz/run.sh: findings in:$failed (inputs in $build/fuzz-artifacts/)" >&2
  exit 1
fi
echo "fuzz/run.sh: no findings ($targets, ${secs}s each)"
