#!/bin/sh
# Packs what the GPU machine needs to run kiln's cuda-labelled tests and GPU benchmarks,
# built here (build-ci, or the build directory given as the first argument): the library, the worker, the CLI, the test and bench binaries, and
# the Debian libraries they link that the GPU machine's image lacks. The bundle lands in
# .devbundle/ (git-ignored), which the device tool carries; scripts/device_run.sh unpacks it
# there at the same absolute path (/work/main), so build-tree RPATHs and test data paths hold.
set -eu
cd "$(dirname "$0")/.."
out=.devbundle
build=${1:-build-ci}
rm -rf "$out" && mkdir -p "$out/stage/$build/tests" "$out/stage/$build/bench" "$out/stage/$build/tools" "$out/stage/deps"
cp -a "$build/lib" "$build/libexec" "$out/stage/$build/"
cp -a "$build/tools/kiln" "$out/stage/$build/tools/"
for t in "$build"/tests/cuda_*_test "$build"/tests/observe_test; do cp -a "$t" "$out/stage/$build/tests/"; done
for b in "$build"/bench/*_bench; do [ -x "$b" ] && cp -a "$b" "$out/stage/$build/bench/"; done
# OpenBLAS and oneDNN are loaded at run time (src/support/blas.h), not linked: carried with
# what they link.
openblas=$(ls /usr/lib/*/openblas-openmp/libopenblas.so.0 2>/dev/null | head -1)
[ -n "$openblas" ] && cp -L "$openblas" "$out/stage/deps/"
dnnl=$(ls /usr/lib/*/libdnnl.so.2 2>/dev/null | head -1)
[ -n "$dnnl" ] && cp -L "$dnnl" "$out/stage/deps/"
for lib in $(ldd "$build"/lib/libkiln.so ${openblas:+"$openblas"} ${dnnl:+"$dnnl"} | awk '/=>/ {print $3}'); do
  case "$(basename "$lib")" in
    libc.so*|libm.so*|libmvec.so*|libstdc++*|libgcc_s*) ;;  # the GPU machine's own are newer
    *) cp -L "$lib" "$out/stage/deps/" ;;
  esac
done
echo "$build" > "$out/stage/BUILD"
tar -C "$out/stage" -czf "$out/bundle.tar.gz" . && rm -rf "$out/stage"
ls -la "$out/bundle.tar.gz"
