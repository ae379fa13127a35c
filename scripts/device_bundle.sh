#!/bin/sh
# Packs what the GPU machine needs to run kiln's cuda-labelled tests and GPU benchmarks,
# built here (build-ci): the library, the worker, the CLI, the test and bench binaries, and
# the Debian libraries they link that the GPU machine's image lacks. The bundle lands in
# .devbundle/ (git-ignored), which the device tool carries; scripts/device_run.sh unpacks it
# there at the same absolute path (/work/main), so build-tree RPATHs and test data paths hold.
set -eu
cd "$(dirname "$0")/.."
out=.devbundle
rm -rf "$out" && mkdir -p "$out/stage/build-ci/tests" "$out/stage/build-ci/bench" "$out/stage/build-ci/tools" "$out/stage/deps"
cp -a build-ci/lib build-ci/libexec "$out/stage/build-ci/"
cp -a build-ci/tools/kiln "$out/stage/build-ci/tools/"
for t in build-ci/tests/cuda_*_test build-ci/tests/observe_test; do cp -a "$t" "$out/stage/build-ci/tests/"; done
for b in build-ci/bench/*_bench; do [ -x "$b" ] && cp -a "$b" "$out/stage/build-ci/bench/"; done
for lib in $(ldd build-ci/lib/libkiln.so | awk '/=>/ {print $3}'); do
  case "$(basename "$lib")" in
    libc.so*|libm.so*|libstdc++*|libgcc_s*) ;;  # the GPU machine's own are newer
    *) cp -L "$lib" "$out/stage/deps/" ;;
  esac
done
tar -C "$out/stage" -czf "$out/bundle.tar.gz" . && rm -rf "$out/stage"
ls -la "$out/bundle.tar.gz"
