// The kernel ABI that generated code and the backends share, declared once.
//  CPU (cpp dialect): void NAME(const int64_t* sizes, char* const* buffers) — the graph's
//    size symbols, then the kernel's buffers, outputs first.
//  CUDA (cuda dialect): extern "C" __global__ void NAME(const KilnArgs args) — the same two
//    arrays in one block passed by value. The block is declared here once, as C++ for the
//    backend that fills it and, from the same macro, as source text for the kernels.
// Launch geometry: a kernel's threads per block (KernelLaunch::threads) is its schedule's
// (loop/schedule.h: kGpuThreads, or 128 to 1024 for rows held in registers).
#pragma once

#include <cstdint>

#include "loop/schedule.h"

namespace kiln {

#define KILN_ARGS_DECLARATION \
  struct KilnArgs {           \
    int64_t sizes[32];        \
    char* buffers[64];        \
  }
#define KILN_ABI_TEXT(x) KILN_ABI_TEXT_(x)
#define KILN_ABI_TEXT_(x) #x

KILN_ARGS_DECLARATION;
// The same declaration as the kernels' source spells it.
constexpr const char* kKilnArgsSource = KILN_ABI_TEXT(KILN_ARGS_DECLARATION) ";";

// At most this many size symbols and buffers (a kernel's parameters plus a split
// reduction's two scratch buffers) fit the block.
constexpr int kCudaMaxSymbols = sizeof(KilnArgs::sizes) / sizeof(int64_t);
constexpr int kCudaMaxBuffers = sizeof(KilnArgs::buffers) / sizeof(char*);

}  // namespace kiln
