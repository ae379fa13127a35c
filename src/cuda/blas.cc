#include "cuda/blas.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <vector>

#include <nlohmann/json.hpp>

#include "cache/cache.h"
#include "cuda/device_memory.h"
#include "cuda/driver.h"
#include "kiln/error.h"
#include "support/dynamic_library.h"
#include "support/log.h"

namespace kiln::cuda {

namespace {

// cuBLASLt's C ABI: statuses and enums are ints, handles opaque pointers. Values from
// cublasLt.h, cublas_api.h and library_types.h (stable within the major version).
using Status = int;
using Handle = void*;
using MatmulDesc = void*;
using Layout = void*;
using Preference = void*;
struct Algo {
  uint64_t data[8];
};
struct HeuristicResult {
  Algo algo;
  size_t workspace_size;
  Status state;
  float waves_count;
  int reserved[4];
};
constexpr int kR32F = 0, kR64F = 1, kR16F = 2, kR16BF = 14;
constexpr int kCompute32F = 68, kCompute32FFastTf32 = 77, kCompute64F = 70;
constexpr int kOpN = 0, kOpT = 1;
constexpr int kDescTransA = 3, kDescTransB = 4, kDescEpilogue = 7, kDescBiasPointer = 8,
              kDescBiasDataType = 26;
constexpr int kLayoutBatchCount = 5, kLayoutStridedBatchOffset = 6;
constexpr int kPrefMaxWorkspace = 1;
constexpr int kEpilogueDefault = 1, kEpilogueRelu = 2, kEpilogueBias = 4, kEpilogueGelu = 32;
constexpr size_t kWorkspaceBytes = size_t{32} << 20;

struct Lt {
  Status (*create)(Handle*);
  Status (*desc_create)(MatmulDesc*, int, int);
  Status (*desc_set)(MatmulDesc, int, const void*, size_t);
  Status (*layout_create)(Layout*, int, uint64_t, uint64_t, int64_t);
  Status (*layout_set)(Layout, int, const void*, size_t);
  Status (*pref_create)(Preference*);
  Status (*pref_set)(Preference, int, const void*, size_t);
  Status (*heuristic)(Handle, MatmulDesc, Layout, Layout, Layout, Layout, Preference, int,
                      HeuristicResult*, int*);
  Status (*matmul)(Handle, MatmulDesc, const void*, const void*, Layout, const void*, Layout,
                   const void*, const void*, Layout, void*, Layout, const Algo*, void*, size_t,
                   CUstream);
  const char* (*status_string)(Status);
  Status (*algo_check)(Handle, MatmulDesc, Layout, Layout, Layout, Layout, const Algo*,
                       HeuristicResult*);
  size_t (*version)();
  Handle handle = nullptr;
  void* workspace = nullptr;
  std::string problem;
};

template <class Fn>
void resolve(void* h, const char* symbol, Fn* fn, std::string* problem) {
  resolve_symbol(h, "libcublasLt", symbol, fn, problem);
}

Lt& lt() {
  static Lt& loaded = *[] {
    auto* l = new Lt();  // immortal
    void* h = open_toolkit_library("libcublasLt", {13, 12});
    if (!h) {
      l->problem = "libcublasLt (the CUDA toolkit's matrix library) was not found; set CUDA_HOME";
      return l;
    }
    std::string* p = &l->problem;
    resolve(h, "cublasLtCreate", &l->create, p);
    resolve(h, "cublasLtMatmulDescCreate", &l->desc_create, p);
    resolve(h, "cublasLtMatmulDescSetAttribute", &l->desc_set, p);
    resolve(h, "cublasLtMatrixLayoutCreate", &l->layout_create, p);
    resolve(h, "cublasLtMatrixLayoutSetAttribute", &l->layout_set, p);
    resolve(h, "cublasLtMatmulPreferenceCreate", &l->pref_create, p);
    resolve(h, "cublasLtMatmulPreferenceSetAttribute", &l->pref_set, p);
    resolve(h, "cublasLtMatmulAlgoGetHeuristic", &l->heuristic, p);
    resolve(h, "cublasLtMatmul", &l->matmul, p);
    resolve(h, "cublasLtGetStatusString", &l->status_string, p);
    resolve(h, "cublasLtMatmulAlgoCheck", &l->algo_check, p);
    resolve(h, "cublasLtGetVersion", &l->version, p);
    return l;
  }();
  return loaded;
}

// A prepared product: descriptors and algorithm for one shape, dtype and epilogue.
struct Prepared {
  MatmulDesc desc = nullptr;
  Layout a = nullptr, b = nullptr, c = nullptr;
  Algo algo{};
};

int data_type(DType d) {
  switch (d) {
    case DType::f32:
      return kR32F;
    case DType::f64:
      return kR64F;
    case DType::f16:
      return kR16F;
    case DType::bf16:
      return kR16BF;
    default:
      throw Error(fmt::format("matmul on cuda: no cuBLASLt type for dtype {}", dtype_name(d)));
  }
}

std::string shape_text(const GemmRequest& r) {
  return fmt::format("[{}x{}] @ [{}x{}] x{} {}{}{}", r.n, r.k, r.k, r.m, r.batches,
                     dtype_name(r.dtype), r.bias ? " +bias" : "",
                     r.epilogue == Epilogue::relu   ? " relu"
                     : r.epilogue == Epilogue::gelu ? " gelu"
                                                    : "");
}

// Strides, transposes and precision: with shape_text, what makes two requests one product.
std::string layout_text(const GemmRequest& r) {
  return fmt::format("lda {} ldb {} ldc {} sa {} sb {} sc {} ta {} tb {} tf32 {}", r.lda, r.ldb,
                     r.ldc, r.stride_a, r.stride_b, r.stride_c, r.a_transposed, r.b_transposed,
                     r.allow_tf32);
}

// The matmul itself, with prepared descriptors and `algo`.
Status run_matmul(Lt& l, const GemmRequest& r, const Prepared& p, const Algo& algo) {
  const float one_f = 1, zero_f = 0;
  const double one_d = 1, zero_d = 0;
  const bool wide = r.dtype == DType::f64;
  const void* alpha = wide ? static_cast<const void*>(&one_d) : &one_f;
  const void* beta = wide ? static_cast<const void*>(&zero_d) : &zero_f;
  // The bias pointer changes per call and lives in the descriptor this shape's calls share:
  // set and enqueued under one lock, so calls from several host threads cannot swap biases.
  static std::mutex bias_mutex;
  std::unique_lock<std::mutex> lock(bias_mutex, std::defer_lock);
  if (r.bias) {
    lock.lock();
    if (Status s = l.desc_set(p.desc, kDescBiasPointer, &r.bias, sizeof r.bias); s != 0) return s;
  }
  return l.matmul(l.handle, p.desc, alpha, r.b, p.a, r.a, p.b, beta, r.c, p.c, r.c, p.c, &algo,
                  l.workspace, kWorkspaceBytes, stream());
}

// max_autotune: the fastest of cuBLASLt's candidates for `r`, timed on r's own buffers
// (median of five runs each, CUDA events), or the one the autotune cache recorded for this
// GPU and cuBLASLt version, after cuBLASLt's own check says it still applies.
Algo tuned_algorithm(Lt& l, const GemmRequest& r, const Prepared& p,
                     const HeuristicResult* candidates, int count);

Prepared prepare(Lt& l, const GemmRequest& r) {
  auto ok = [&](Status s, const char* what) {
    if (s != 0)
      throw Error(
          fmt::format("matmul {} on cuda: {}: {}", shape_text(r), what, l.status_string(s)));
  };
  const int type = data_type(r.dtype);
  const int compute = r.dtype == DType::f64                   ? kCompute64F
                      : r.dtype == DType::f32 && r.allow_tf32 ? kCompute32FFastTf32
                                                              : kCompute32F;
  const int scale = r.dtype == DType::f64 ? kR64F : kR32F;
  Prepared p;
  ok(l.desc_create(&p.desc, compute, scale), "cublasLtMatmulDescCreate");
  // Column-major view: C^T[m, n] = op(B)^T-stored [m, k] x op(A) [k, n].
  const int op_first = r.b_transposed ? kOpT : kOpN, op_second = r.a_transposed ? kOpT : kOpN;
  ok(l.desc_set(p.desc, kDescTransA, &op_first, sizeof op_first), "TRANSA");
  ok(l.desc_set(p.desc, kDescTransB, &op_second, sizeof op_second), "TRANSB");
  int epilogue = r.epilogue == Epilogue::relu   ? kEpilogueRelu
                 : r.epilogue == Epilogue::gelu ? kEpilogueGelu
                                                : kEpilogueDefault;
  if (r.bias) epilogue = (epilogue == kEpilogueDefault ? 0 : epilogue) | kEpilogueBias;
  ok(l.desc_set(p.desc, kDescEpilogue, &epilogue, sizeof epilogue), "EPILOGUE");
  if (r.bias) ok(l.desc_set(p.desc, kDescBiasDataType, &type, sizeof type), "BIAS_DATA_TYPE");
  // Stored shapes (column-major rows x cols): B^T is m x k (k x m when B is stored transposed).
  const uint64_t first_rows = r.b_transposed ? r.k : r.m, first_cols = r.b_transposed ? r.m : r.k;
  const uint64_t second_rows = r.a_transposed ? r.n : r.k, second_cols = r.a_transposed ? r.k : r.n;
  ok(l.layout_create(&p.a, type, first_rows, first_cols, r.ldb), "layout of B");
  ok(l.layout_create(&p.b, type, second_rows, second_cols, r.lda), "layout of A");
  ok(l.layout_create(&p.c, type, r.m, r.n, r.ldc), "layout of C");
  if (r.batches > 1) {
    const int32_t count = static_cast<int32_t>(r.batches);
    for (auto [layout, stride] :
         {std::pair{p.a, r.stride_b}, std::pair{p.b, r.stride_a}, std::pair{p.c, r.stride_c}}) {
      ok(l.layout_set(layout, kLayoutBatchCount, &count, sizeof count), "BATCH_COUNT");
      ok(l.layout_set(layout, kLayoutStridedBatchOffset, &stride, sizeof stride),
         "STRIDED_BATCH_OFFSET");
    }
  }
  Preference pref = nullptr;
  ok(l.pref_create(&pref), "cublasLtMatmulPreferenceCreate");
  const uint64_t workspace = kWorkspaceBytes;
  ok(l.pref_set(pref, kPrefMaxWorkspace, &workspace, sizeof workspace), "MAX_WORKSPACE_BYTES");
  constexpr int kCandidates = 8;
  HeuristicResult results[kCandidates]{};
  int found = 0;
  Status s = l.heuristic(l.handle, p.desc, p.a, p.b, p.c, p.c, pref,
                         r.tune_algorithm ? kCandidates : 1, results, &found);
  if (s != 0 || found == 0) {
    if (r.bias || r.epilogue != Epilogue::none)
      return Prepared{};  // the caller applies the epilogue
    ok(s, "cublasLtMatmulAlgoGetHeuristic");
    throw Error(fmt::format("matmul {} on cuda: cuBLASLt has no algorithm for it", shape_text(r)));
  }
  p.algo = results[0].algo;
  if (r.tune_algorithm && found > 1) p.algo = tuned_algorithm(l, r, p, results, found);
  return p;
}

// The prepared product for `r` (made on first use), or one with a null desc when cuBLASLt
// has no algorithm for r's epilogue.
Prepared prepared_for(Lt& l, const GemmRequest& r) {
  static std::mutex mutex;
  static auto& prepared = *new std::map<std::string, Prepared>();  // immortal, like the handle
  std::lock_guard<std::mutex> lock(mutex);
  if (!l.handle) {
    if (Status s = l.create(&l.handle); s != 0)
      throw Error(fmt::format("cublasLtCreate: {}", l.status_string(s)));
    int64_t capacity = 0;
    l.workspace = allocate(static_cast<int64_t>(kWorkspaceBytes), &capacity);
  }
  const std::string key =
      fmt::format("{} {} tune {}", shape_text(r), layout_text(r), r.tune_algorithm);
  auto it = prepared.find(key);
  if (it == prepared.end()) it = prepared.emplace(key, prepare(l, r)).first;
  return it->second;
}

}  // namespace

bool blas_available() { return lt().problem.empty(); }

namespace {

std::string algo_cache_key(Lt& l, const GemmRequest& r) {
  return content_key(fmt::format("cublaslt algorithm 1\n{}\ncuBLASLt {}\n{} {}", device_info().name,
                                 l.version(), shape_text(r), layout_text(r)));
}

Algo tuned_algorithm(Lt& l, const GemmRequest& r, const Prepared& p,
                     const HeuristicResult* candidates, int count) {
  // The tuned algorithm's cache is an optimization: a cache that cannot be opened (its
  // directory removed meanwhile) means timing the candidates again, not a failed matmul.
  std::optional<Cache> cache;
  try {
    cache = Cache::open();
  } catch (const Error& e) {
    warn_once("cublaslt cache", fmt::format("cuBLASLt's algorithm cache: {}", e.what()));
  }
  const std::string key = cache ? algo_cache_key(l, r) : std::string();
  if (cache) {
    if (std::optional<std::string> entry = cache->get(CacheKind::autotune, key)) {
      // Validated before use: eight 64-bit words, and cuBLASLt's check that it applies.
      nlohmann::json j = nlohmann::json::parse(*entry, nullptr, false);
      if (j.is_object() && j.contains("algo") && j["algo"].is_array() && j["algo"].size() == 8) {
        Algo algo{};
        bool valid = true;
        for (size_t i = 0; i < 8 && valid; ++i) {
          valid = j["algo"][i].is_number_unsigned();
          if (valid) algo.data[i] = j["algo"][i].get<uint64_t>();
        }
        HeuristicResult check{};
        if (valid && l.algo_check(l.handle, p.desc, p.a, p.b, p.c, p.c, &algo, &check) == 0 &&
            check.workspace_size <= kWorkspaceBytes)
          return algo;
      }
    }
  }
  const Driver& d = driver();
  CUevent start = nullptr, end = nullptr;
  check(d.cuEventCreate(&start, 0), "cuEventCreate");
  check(d.cuEventCreate(&end, 0), "cuEventCreate");
  int best = 0;
  float best_ms = 1e30f;
  for (int c = 0; c < count; ++c) {
    if (run_matmul(l, r, p, candidates[c].algo) != 0)
      continue;  // a candidate that fails is skipped
    std::vector<float> times;
    for (int rep = 0; rep < 5; ++rep) {
      d.cuEventRecord(start, stream());
      run_matmul(l, r, p, candidates[c].algo);
      d.cuEventRecord(end, stream());
      d.cuEventSynchronize(end);
      float ms = 0;
      d.cuEventElapsedTime(&ms, start, end);
      times.push_back(ms);
    }
    std::sort(times.begin(), times.end());
    if (times[2] < best_ms) best_ms = times[2], best = c;
  }
  d.cuEventDestroy(start);
  d.cuEventDestroy(end);
  if (cache) {
    nlohmann::json words = nlohmann::json::array();
    for (uint64_t w : candidates[best].algo.data) words.push_back(w);
    cache->put(
        CacheKind::autotune, key,
        nlohmann::json{{"cublaslt", shape_text(r)}, {"algo", words}, {"seconds", best_ms * 1e-3}}
            .dump());
  }
  return candidates[best].algo;
}

}  // namespace

bool gemm(const GemmRequest& r) {
  Lt& l = lt();
  if (!l.problem.empty()) throw Error("matmul on cuda: " + l.problem);
  const Prepared p = prepared_for(l, r);
  if (!p.desc) {  // no algorithm with this epilogue: the plain product; the caller applies it
    GemmRequest plain = r;
    plain.bias = nullptr;
    plain.epilogue = Epilogue::none;
    gemm(plain);
    return false;
  }
  Status s = run_matmul(l, r, p, p.algo);
  if (s != 0)
    throw Error(
        fmt::format("matmul {} on cuda: cublasLtMatmul: {}", shape_text(r), l.status_string(s)));
  return true;
}

}  // namespace kiln::cuda
