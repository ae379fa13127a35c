// kiln's named limits on what it accepts from outside (graph text, traced programs,
// safetensors, repro and plan files, --dim, wire frames), and checked arithmetic on sizes.
// Every limit is stated in the error that enforces it and listed in docs/design.md §11.
// They bound work and memory by the input's size, so that no input crashes kiln, hangs it
// or makes it allocate without bound; real programs are far inside them.
#pragma once

#include <cstdint>
#include <optional>

namespace kiln::limits {

// Dims of one tensor (the eager loops index at most this many; a CUDA launch's work too).
constexpr int64_t kMaxRank = 16;
// Elements of one tensor or view, symbolic sizes bound included: 2^48 (a 2 PiB f64 tensor;
// no machine holds one, and every byte count derived from it fits int64 with room to spare).
constexpr int64_t kMaxElements = int64_t{1} << 48;
// Nodes, inputs and outputs of one graph, and ops in one chain of fused pointwise ops.
constexpr int64_t kMaxNodes = 1000000;
constexpr int64_t kMaxGraphInputs = 65536;
constexpr int64_t kMaxGraphOutputs = 65536;
// Pointwise ops inlined into one expression before a value is given a buffer of its own
// (lowering): expression trees, and every walk over them, stay this shallow.
constexpr int64_t kMaxFusedDepth = 256;
// Bytes of a text graph, a constants or repro file read whole.
constexpr int64_t kMaxTextFileBytes = int64_t{1} << 30;

// a * b, or nullopt when it overflows int64.
inline std::optional<int64_t> checked_mul(int64_t a, int64_t b) {
  int64_t r = 0;
  if (__builtin_mul_overflow(a, b, &r)) return std::nullopt;
  return r;
}
inline std::optional<int64_t> checked_add(int64_t a, int64_t b) {
  int64_t r = 0;
  if (__builtin_add_overflow(a, b, &r)) return std::nullopt;
  return r;
}
inline std::optional<int64_t> checked_sub(int64_t a, int64_t b) {
  int64_t r = 0;
  if (__builtin_sub_overflow(a, b, &r)) return std::nullopt;
  return r;
}

}  // namespace kiln::limits
