#!/bin/sh
# ThreadSanitizer over what shares state between threads: the worker pool (its slot
# threads, status and wait_ready), the caches written by many processes, and the async and
# progressive modes (stages landing on pool threads while calls run). Builds only those
# tests and the processes they start (clang, -O1, no eager CUDA kernels), into BUILD_DIR.
# Any report fails the run (halt_on_error).
set -eu
cd "$(dirname "$0")/.."
build=${1:-build-tsan}
CC=clang CXX=clang++ cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CXX_FLAGS_RELEASE="-O1" -DKILN_WERROR=ON -DKILN_SANITIZE=thread \
  -DKILN_NVCC=KILN_NVCC-NOTFOUND > /dev/null
cmake --build "$build" --target worker_faults_test cache_test async_test kiln_worker kiln_cli pool_helper
cache=$(pwd)/$build/test-cache
rm -rf "$cache"
export KILN_CACHE_DIR="$cache"
export TSAN_OPTIONS="halt_on_error=1 abort_on_error=1 second_deadlock_stack=1 suppressions=$(pwd)/tests/tsan.supp"
# Each test in a process of its own, as ctest runs them (workers inherit the environment a
# test set, so tests must not share a pool).
run_each() {
  "$1" --gtest_list_tests | awk '/^[^ ]/ {suite = $1} /^  / {print suite $1}' |
    xargs -P "$(nproc)" -I{} sh -c '"$0" --gtest_brief=1 --gtest_filter="$1" > "$2/tsan-$(echo "$1" | tr "/" "_").log" 2>&1 ||
                                    { cat "$2/tsan-$(echo "$1" | tr "/" "_").log"; echo "FAILED: $1"; exit 255; }' "$1" {} "$logs"
}
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
for t in worker_faults_test cache_test async_test; do
  run_each "$build/tests/$t"
  echo "tsan: $t passed"
done
echo "tsan: no data races reported"
