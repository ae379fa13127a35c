#!/bin/sh
# Fresh process to first result: `kiln run` of the pointwise graph (8 x 1024), in new
# processes, cold (nothing cached: passes, codegen and gcc in a compile worker, whose start
# is included) and warm (populated cache: graph and object loaded, no compiler, no worker).
# Prints the median wall time of each over N runs, the whole process included.
# Usage: bench/warm_start.sh BUILD_DIR [N]
set -eu
build=$1
runs=${2:-11}
graph="$(dirname "$0")/../examples/graphs/pointwise.kiln"
cache=$(mktemp -d)
trap 'rm -rf "$cache"' EXIT
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
time_run() {  # prints milliseconds
  t0=$(date +%s%N)
  KILN_CACHE_DIR="$cache/c" "$build/tools/kiln" run "$graph" --dim s0=8 --mode "$1" > /dev/null
  t1=$(date +%s%N)
  echo $(( (t1 - t0) / 1000 ))
}
cold=$(for i in $(seq "$runs"); do rm -rf "$cache/c"; time_run subprocess; done | median)
time_run subprocess > /dev/null
warm=$(for i in $(seq "$runs"); do time_run subprocess; done | median)
bare=$(for i in $(seq "$runs"); do KILN_FORCE_DISABLE_CACHES=1 KILN_CACHE_DIR="$cache/c" time_run async; done | median)
echo "fresh process to first result (median of $runs, microseconds):"
echo "  cold, compiled in a worker:     $cold"
echo "  warm, loaded from the cache:    $warm"
echo "  eager interpreter, no compile:  $bare   (process start + load + run)"
