// The compile proper, wherever it runs (in the host for InProcess, in a worker otherwise):
// a verified graph → optimize_graph → lower → kernels grouped into translation units →
// C source → a CompiledPlan whose units name their objects by kernel-cache key. Compiling
// the units' source to objects is the separate, parallel step (object_store.h).
#pragma once

#include "compile/toolchain.h"
#include "runtime/plan.h"

namespace kiln {

// At most this many kernels share a translation unit: one compiler run for a small graph,
// several that run in parallel (in workers) for a large one. A graph of more than
// kKernelsPerUnit * kUnitsPerGraph kernels puts more in each (kernels_per_unit), so that
// compiler start-up does not dominate: one unit per 8 kernels of 10,000 cost 10 ms a kernel.
// Decided by the distinct kernels alone, so that every mode produces the same units and
// shares cache entries.
constexpr size_t kKernelsPerUnit = 8;
constexpr size_t kUnitsPerGraph = 64;
size_t kernels_per_unit(size_t kernels);

// Kernels get their default configs (autotuning, tuner.h, changes them later). On
// Device::cuda the units hold the cuda dialect's kernels (cuda_poi_fused_..._N), compiled
// by NVRTC.
CompiledPlan build_plan(const Graph& graph, const Toolchain& toolchain,
                        Device device = Device::cpu);

// max_autotune: each f32 matmul step of A (rank >= 2: its leading dims are the rows) and a
// matrix B becomes a GEMM template kernel (gemm_template.h),
// whose config starts at the BLAS call and may move to generated tiled loops.
void add_gemm_templates(CompiledPlan& plan, const Toolchain& toolchain);

// (Re)builds the units from the kernels' bodies and configs: each kernel gets its symbol
// (KernelLaunch::symbol), and each distinct symbol is compiled once, in one unit, whatever
// number of kernels share it (a model of 12 equal layers compiles one layer's kernels).
// Light kernels (KernelLaunch::light) share units only with light ones. A unit's source
// names no graph, so equal units of different graphs share one object.
void assemble_units(CompiledPlan& plan, const Toolchain& toolchain);

}  // namespace kiln
