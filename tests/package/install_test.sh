#!/bin/sh
# Installs kiln from BUILD_DIR into a prefix, moves the prefix, then builds and runs a
# program against it twice: with find_package(kiln CONFIG) and with pkg-config.
set -eu
build_dir=$1
source_dir=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build_dir" --prefix "$work/prefix" > "$work/install.log"
mv "$work/prefix" "$work/moved"
cmake -S "$source_dir/tests/package/consumer" -B "$work/consumer" -G Ninja \
      -DCMAKE_PREFIX_PATH="$work/moved" -DCMAKE_BUILD_TYPE=Release > "$work/configure.log"
cmake --build "$work/consumer" > "$work/build.log"
KILN_FORCE_DISABLE_CACHES=1 "$work/consumer/consumer"
flags=$(PKG_CONFIG_PATH="$work/moved/lib/pkgconfig" pkg-config --cflags --libs kiln)
c++ "$source_dir/tests/package/consumer/main.cc" $flags -o "$work/pc_consumer"
KILN_FORCE_DISABLE_CACHES=1 "$work/pc_consumer"
"$work/moved/bin/kiln" --version
