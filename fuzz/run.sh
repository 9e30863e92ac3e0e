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
# (after the other targets ran); the HDF5 targets set aside, without
# failing, inputs that crash inside libhdf5 itself (fuzz/README.md), in
# <build>/fuzz-artifacts/<t>/libhdf5/. Then: minimise it, fix the parser, and add
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

# One thread per kernel; leaks are findings (except libhdf5's own, see
# fuzz_util.h); UBSan stops at the first report.
export OMP_NUM_THREADS=1
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# Whose code a sanitizer or libFuzzer report points at: the first stack frame
# that is not the sanitizers', libFuzzer's or libc's. "libhdf5" for a frame in
# libhdf5, else "lamina".
owner() {
  awk '/^ *#[0-9]+ / && !done {
    if ($0 ~ /__interceptor_|__asan|__sanitizer|__lsan|__ubsan|fuzzer::|libc\.so|sysdeps|libc_start/) next
    if ($0 ~ / in (malloc|calloc|realloc|free|strdup|strndup|memcpy|memmove|memset|memcmp)( |$)/) next
    print ($0 ~ /libhdf5/ ? "libhdf5" : "lamina"); done = 1
  } END { if (!done) print "lamina" }'
}

failed=""
for t in $targets; do
  bin=$build/fuzz/fuzz_$t
  work=$build/fuzz-corpus/$t
  art=$build/fuzz-artifacts/$t
  rm -rf "$art"
  mkdir -p "$work" "$art"
  dirs=("$work" "fuzz/corpus/$t")
  [ -d "fuzz/regressions/$t" ] && dirs+=("fuzz/regressions/$t")
  flags=(-timeout="${LAMINA_FUZZ_TIMEOUT:-20}" -rss_limit_mb="${LAMINA_FUZZ_RSS_MB:-2048}")
  [ -f "fuzz/dict/$t.dict" ] && flags+=("-dict=fuzz/dict/$t.dict")
  # An allocation larger than the address space aborts (an unchecked size of
  # ours). The HDF5 targets let malloc return NULL instead, since libhdf5
  # asks for such sizes from crafted headers and copes with NULL (sizes the
  # system could grant still count, through -rss_limit_mb); and they go on
  # after a crash (fork mode), because libhdf5 1.10 crashes on crafted files
  # in ways Lamina cannot check beforehand (fuzz/README.md): each input kept
  # is then replayed and counts as a finding only when the report points at
  # Lamina's code.
  asan=detect_leaks=1
  mode=()
  case $t in
    keras_archive | h5_weights)
      asan=$asan:allocator_may_return_null=1
      mode=(-fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1)
      ;;
  esac
  echo "== fuzz_$t: ${secs}s"
  # shellcheck disable=SC2086
  ASAN_OPTIONS=${ASAN_OPTIONS:-$asan} "$bin" -max_total_time="$secs" "${flags[@]}" "${mode[@]}" \
    -artifact_prefix="$art/" -print_final_stats=1 ${LAMINA_FUZZ_ARGS:-} "${dirs[@]}" \
    >"$art/log" 2>&1
  rc=$?
  grep -E '^(stat::number_of_executed_units|#[0-9]+: cov:.*exec/s)' "$art/log" | tail -1
  ours=0
  hdf5=0
  for f in "$art"/crash-* "$art"/timeout-* "$art"/oom-* "$art"/leak-* "$art"/slow-unit-*; do
    [ -f "$f" ] || continue
    case $f in */slow-unit-*) continue ;; esac
    # Running out of memory reports no stack; a lower malloc limit catches
    # the large allocation behind it, with its stack.
    limit=()
    case $f in */oom-*) limit=(-malloc_limit_mb=$((${LAMINA_FUZZ_RSS_MB:-2048} / 8))) ;; esac
    ASAN_OPTIONS=${ASAN_OPTIONS:-$asan} "$bin" -runs=1 "${flags[@]}" "${limit[@]}" "$f" \
      >"$f.txt" 2>&1
    if [ "$(owner <"$f.txt")" = libhdf5 ]; then
      mkdir -p "$art/libhdf5"
      mv "$f" "$f.txt" "$art/libhdf5/"
      hdf5=$((hdf5 + 1))
    else
      ours=$((ours + 1))
      echo "fuzz_$t: finding $f" >&2
      grep -E 'ERROR:|SUMMARY:|runtime error|fuzz check failed' "$f.txt" | head -5 >&2
    fi
  done
  if [ $hdf5 -gt 0 ]; then
    echo "fuzz_$t: $hdf5 input(s) crash inside libhdf5 (not counted): $art/libhdf5/"
  fi
  if [ $ours -gt 0 ] || { [ $rc -ne 0 ] && [ ${#mode[@]} -eq 0 ]; }; then
    echo "fuzz_$t FAILED (exit $rc): log $art/log" >&2
    failed="$failed $t"
  fi
done

if [ -n "$failed" ]; then
  echo "fuzz/run.sh: findings in:$failed (inputs in $build/fuzz-artifacts/)" >&2
  exit 1
fi
echo "fuzz/run.sh: no findings ($targets, ${secs}s each)"
