#include "cuda/eager_cuda.h"

#include <fmt/format.h>

#include <algorithm>
#include <utility>

#include "cuda/driver.h"
#include "kiln/dtype.h"
#include "kiln/error.h"

#ifdef KILN_HAVE_EAGER_FATBIN
namespace kiln::cuda {
extern const unsigned char kEagerFatbin[];
extern const unsigned long kEagerFatbin_size;
}  // namespace kiln::cuda
#endif

namespace kiln::cuda {

namespace {

constexpr unsigned kBlock = 256;  // eager_kernels.cu's kBlock

struct EagerModule {
  CUfunction map = nullptr, reduce = nullptr, rows = nullptr, gather = nullptr, pool2d = nullptr,
             random = nullptr;
  CUfunction attention64 = nullptr, attention32 = nullptr;
  // f16/bf16 on their own tensor-core products, by [bf16][head 128].
  CUfunction attention16[2][2] = {};
};

const EagerModule& module() {
  static const EagerModule& loaded = *[] {
#ifdef KILN_HAVE_EAGER_FATBIN
    const Driver& d = driver();
    CUmodule m = nullptr;
    check(d.cuModuleLoadData(&m, kEagerFatbin),
          "loading kiln's eager CUDA kernels (cuModuleLoadData)");
    auto function = [&](const char* name) {
      CUfunction f = nullptr;
      check(d.cuModuleGetFunction(&f, m, name),
            fmt::format("cuModuleGetFunction {}", name).c_str());
      return f;
    };
    auto* e = new EagerModule();  // immortal, like the context it lives in
    e->map = function("kiln_eager_map");
    e->reduce = function("kiln_eager_reduce");
    e->rows = function("kiln_eager_rows");
    e->gather = function("kiln_eager_gather");
    e->pool2d = function("kiln_eager_pool2d");
    e->random = function("kiln_eager_random");
    e->attention64 = function("kiln_eager_attention64");
    e->attention32 = function("kiln_eager_attention32");
    // The attention tiles pass the 48 KB a block gets without asking.
    constexpr int kMaxDynamicSharedBytes = 8;  // CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES
    for (auto [f, rows] : {std::pair{e->attention64, 64}, std::pair{e->attention32, 32}})
      check(d.cuFuncSetAttribute(f, kMaxDynamicSharedBytes,
                                 attention_shared_bytes(rows, kAttentionKeySplits)),
            "cuFuncSetAttribute (kiln_eager_attention's shared memory)");
    for (int bf16 = 0; bf16 < 2; ++bf16)
      for (int wide = 0; wide < 2; ++wide) {
        const int head = wide ? 128 : 64;
        CUfunction& f = e->attention16[bf16][wide];
        f = function(
            fmt::format("kiln_eager_attention16_{}_{}", bf16 ? "bf16" : "f16", head).c_str());
        check(d.cuFuncSetAttribute(f, kMaxDynamicSharedBytes, attention16_shared_bytes(head)),
              "cuFuncSetAttribute (kiln_eager_attention16's shared memory)");
      }
    return e;
#else
    throw Error(
        "eager ops on CUDA tensors: this kiln was built without nvcc, so it has no eager CUDA "
        "kernels");
    return static_cast<EagerModule*>(nullptr);
#endif
  }();
  return loaded;
}

// Blocks for `work` independent items: enough to fill every multiprocessor several times,
// never more than the work needs (the kernels grid-stride over the rest).
unsigned grid_for(int64_t work) {
  const int64_t cap = int64_t{device_info().multiprocessors} * 8;
  return static_cast<unsigned>(std::clamp<int64_t>(work, 1, cap));
}

template <class Args>
void launch(CUfunction fn, unsigned grid, const Args& args, const char* what) {
  void* params[] = {const_cast<Args*>(&args)};
  check(driver().cuLaunchKernel(fn, grid, 1, 1, kBlock, 1, 1, 0, stream(), params, nullptr), what);
}

}  // namespace

void launch_map(const MapArgs& args) {
  if (args.numel == 0) return;
  MapArgs a = args;
  for (int d = 0; d < a.ndim; ++d) {
    // Round-up magic numbers (Hacker's Delight 10-9): shift = ceil(log2(size)), exact for
    // dividends below 2^31.
    const uint64_t size = static_cast<uint64_t>(std::max<int64_t>(a.sizes[d], 1));
    uint32_t shift = 0;
    while ((uint64_t{1} << shift) < size) ++shift;
    a.div_shift[d] = shift;
    a.div_magic[d] =
        static_cast<uint32_t>(((uint64_t{1} << 32) * ((uint64_t{1} << shift) - size)) / size + 1);
  }
  launch(module().map, grid_for((a.numel + kBlock - 1) / kBlock), a, "kiln_eager_map");
}

void launch_reduce(const ReduceArgs& a) {
  if (a.count == 0) return;
  launch(module().reduce, grid_for(a.count), a, "kiln_eager_reduce");
}

void launch_rows(const RowsArgs& a) {
  if (a.count == 0 || a.length == 0) return;
  launch(module().rows, grid_for(a.count), a, "kiln_eager_rows");
}

void launch_gather(const GatherArgs& a) {
  if (a.count == 0) return;
  launch(module().gather, grid_for((a.count + kBlock - 1) / kBlock), a, "kiln_eager_gather");
}

void launch_pool2d(const PoolArgs& a) {
  const int64_t total = a.planes * a.oh * a.ow;
  if (total == 0) return;
  launch(module().pool2d, grid_for((total + kBlock - 1) / kBlock), a, "kiln_eager_pool2d");
}

void launch_random(const RandomArgs& a) {
  if (a.numel == 0) return;
  launch(module().random, grid_for((a.numel + kBlock - 1) / kBlock), a, "kiln_eager_random");
}

namespace {

bool half_precision(const AttentionArgs& a) {
  return a.dtype == static_cast<int32_t>(DType::f16) ||
         a.dtype == static_cast<int32_t>(DType::bf16);
}

}  // namespace

bool attention_supported(const AttentionArgs& a) {
  const int max_head = half_precision(a) ? kAttention16MaxHead : kAttentionMaxHead;
  return a.d <= max_head && a.dv <= max_head && a.batch_dims <= kAttentionMaxBatchDims &&
         a.batch > 0 && a.batch <= 65535 && a.t > 0 && a.s > 0;
}

void launch_attention(const AttentionArgs& a) {
  if (!attention_supported(a))
    throw Error("kiln_eager_attention: shapes beyond the fused kernel's limits");
  if (half_precision(a)) {
    const bool wide = std::max(a.d, a.dv) > 64;
    const int rows = kAttention16Rows;
    void* params[] = {const_cast<AttentionArgs*>(&a)};
    check(driver().cuLaunchKernel(
              module().attention16[a.dtype == static_cast<int32_t>(DType::bf16)][wide],
              static_cast<unsigned>((a.t + rows - 1) / rows), static_cast<unsigned>(a.batch), 1,
              32 * kAttention16Warps, 1, 1, attention16_shared_bytes(wide ? 128 : 64), stream(),
              params, nullptr),
          "kiln_eager_attention16");
    return;
  }
  // 64-row blocks where there is one a multiprocessor, else 32-row ones (more blocks).
  const int64_t blocks64 = (a.t + 63) / 64 * a.batch;
  const bool wide = blocks64 >= int64_t{device_info().multiprocessors};
  const unsigned rows = wide ? 64 : 32;  // a block: a warp per 16 rows and key part
  void* params[] = {const_cast<AttentionArgs*>(&a)};
  check(driver().cuLaunchKernel(wide ? module().attention64 : module().attention32,
                                static_cast<unsigned>((a.t + rows - 1) / rows),
                                static_cast<unsigned>(a.batch), 1, rows * 2 * kAttentionKeySplits,
                                1, 1, attention_shared_bytes(int(rows), kAttentionKeySplits),
                                stream(), params, nullptr),
        "kiln_eager_attention");
}

}  // namespace kiln::cuda
