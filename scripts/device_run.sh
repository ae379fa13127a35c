#!/bin/sh
# On the GPU machine: unpacks .devbundle/bundle.tar.gz (scripts/device_bundle.sh) so that
# the build tree appears at /work/main/<its build directory> (build-ci unless the bundle
# names another) as it was built, then runs "$@" there with
# the carried libraries on the library path.
set -eu
root=$(pwd)
mkdir -p /work "$root/.devbundle/x"
[ -e /work/main ] || ln -s "$root" /work/main
tar -C "$root/.devbundle/x" -xzf "$root/.devbundle/bundle.tar.gz"
build=$(cat "$root/.devbundle/x/BUILD" 2>/dev/null || echo build-ci)
rm -rf "${root:?}/$build" && ln -s "$root/.devbundle/x/$build" "$root/$build"
export LD_LIBRARY_PATH="$root/.devbundle/x/deps:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
export KILN_CACHE_DIR=/tmp/kiln-test-cache
cd /work/main
exec "$@"
