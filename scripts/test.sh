#!/bin/sh
# Builds and runs every test: the tree's habits (scripts/check_tree.sh: layers, line
# budget, clang-format), then g++ Release with -Werror, then clang Debug with -Werror,
# AddressSanitizer + UndefinedBehaviorSanitizer and the fuzzers (each run for a bounded time
# over its committed corpus), then a ThreadSanitizer build of only what shares state across
# threads: the worker pool, the caches and the background compile modes. GPU tests (label
# cuda) skip without a GPU.
set -eu
cd "$(dirname "$0")/.."
./scripts/deps.sh
./scripts/check_tree.sh
jobs=$(nproc)

cmake -S . -B build-ci -G Ninja -DCMAKE_BUILD_TYPE=Release -DKILN_WERROR=ON > /dev/null
cmake --build build-ci
ctest --test-dir build-ci -j "$jobs" --output-on-failure -LE full

CC=clang CXX=clang++ cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug \
  -DKILN_WERROR=ON -DKILN_SANITIZE=address,undefined -DKILN_FUZZ=ON > /dev/null
cmake --build build-asan
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir build-asan -j "$jobs" --output-on-failure -LE "package|full"

./scripts/test_tsan.sh build-tsan
echo "all tests passed"
