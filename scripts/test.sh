#!/bin/sh
# Builds and runs every test: the tree's habits (scripts/check_tree.sh: layers, line
# budget, clang-format), then g++ Release with -Werror, then clang Debug with -Werror,
# AddressSanitizer + UndefinedBehaviorSanitizer and the fuzzers (each run for a bounded time
# over its committed corpus), then a ThreadSanitizer build of only what shares state across
# threads: the worker pool, the caches and the background compile modes. GPU tests (label
# cuda) skip without a GPU. The sanitizer build leaves out the tests labelled `slow` (the
# demos, the big cross-products), which the Release build runs; `full` is the long suites,
# run by hand (ctest -L full).
#
# At the end, and when a step fails, it prints each step's seconds and the slowest tests of
# each ctest run: CI keeps the end of the output.
set -eu
cd "$(dirname "$0")/.."
jobs=$(nproc)
steps=""
report() {
  printf '\nseconds per step:%b\n' "$steps"
  for dir in build-ci build-asan; do
    costs=$dir/Testing/Temporary/CTestCostData.txt
    [ -f "$costs" ] || continue
    echo "slowest tests of $dir (seconds):"
    awk 'NF == 3 { printf "  %8.1f  %s\n", $3, $1 }' "$costs" | sort -rn | head -15
  done
}
# step NAME COMMAND...: runs the command, recording its seconds; a failure ends the run.
step() {
  name=$1
  shift
  start=$(date +%s)
  status=0
  "$@" || status=$?
  steps="$steps\n  $(($(date +%s) - start))  $name"
  if [ "$status" -ne 0 ]; then
    report
    echo "step failed: $name (exit $status)"
    exit "$status"
  fi
}

step deps ./scripts/deps.sh
step check_tree ./scripts/check_tree.sh

step release_configure sh -c 'cmake -S . -B build-ci -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DKILN_WERROR=ON > /dev/null'
step release_build cmake --build build-ci
step release_tests ctest --test-dir build-ci -j "$jobs" --output-on-failure -LE full

step asan_configure sh -c 'CC=clang CXX=clang++ cmake -S . -B build-asan -G Ninja \
  -DCMAKE_BUILD_TYPE=Debug -DKILN_WERROR=ON -DKILN_SANITIZE=address,undefined -DKILN_FUZZ=ON \
  > /dev/null'
step asan_build cmake --build build-asan
# KILN_SGEMM=openblas: LeakSanitizer (clang 14) crashes at exit on oneDNN's dynamic TLS; the
# Release run covers oneDNN.
# Two single tests the Release run covers take a third of the sanitizer run's time there
# (166 s and 47 s on 2 cores): kiln run on 1,000-deep graphs in several processes, and one
# graph of 900 promotions.
asan_skip="HostileInput.DeepGraphsCompileWithoutDeepRecursion|TypePromotion.ZeroDimTensorsRankBelowTensorsWithDims"
step asan_tests env ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 KILN_SGEMM=openblas \
  ctest --test-dir build-asan -j "$jobs" --output-on-failure -LE "package|full|slow" -E "$asan_skip"

step tsan ./scripts/test_tsan.sh build-tsan
report
echo "all tests passed"
