#!/bin/sh
# Builds kiln (Release) and runs its demo: a transformer layer compiled in
# async+progressive mode, then the graph it saved, run again by the kiln CLI; then an MLP
# trained with autograd and a fused (compiled) AdamW step.
set -eu
cd "$(dirname "$0")/.."
./scripts/deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DKILN_BUILD_EXAMPLES=ON > /dev/null
cmake --build build --target transformer_demo training_demo kiln_cli kiln_worker
./build/examples/transformer_demo build/demo_out
./build/tools/kiln run build/demo_out/transformer_layer.kiln
# The newest repro file, replayed in a fresh process (compiled vs eager).
./build/tools/kiln repro "$(ls -t build/demo_out/trace/graph_runnable_*.json | head -n 1)"
./build/examples/training_demo
