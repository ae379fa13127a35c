// Row kernels (reductions and the pointwise work around them), shared by the emitter's
// files: what a reduction phase accumulates in, the analyses of a row kernel's loads and
// values, the CPU loops (rows split across threads, or columns), and the CUDA form (a row
// per block, held in registers when its length is a constant; cuda_row_loop.cc). Internal
// to src/codegen.
#pragma once

#include <set>
#include <string>
#include <vector>

#include "codegen/c_emitter.h"
#include "loop/kernel.h"

namespace kiln::emit {

// The cpp dialect's split loop over one long row (a pragma; {n} is the element count).
constexpr const char* kParallelSimdLoop =
    "#pragma omp parallel for simd if(parallel: {n} >= KILN_GRAIN) KILN_NUM_THREADS";

// The accumulator of a reduction phase: f64 for floating sums and products (the oracle's
// precision), i64 for integer ones, the value's own type for max and min.
// Format strings use {a} (the accumulator), {v} (the element's value) and {n} (a NaN flag).
struct Accumulation {
  std::string type, init, update;
  std::string clauses;   // OpenMP reduction clauses: the loop may run in any order
  std::string nan_flag;  // max/min of floats: declared before, set when a NaN was seen
  std::string after;     // applied to the accumulator after the loop
  std::string combine;   // two partial accumulators {x} and {y} into one (GPU block reductions)
};
// A row value worth computing once: a phase's per-element value that an element store also
// needs and that costs a vector math call (softmax's exp(x - max)). The phase loop writes it
// to that store's own element of the output (same dtype, so exact), and the store loop reads
// it back from cache instead of recomputing it. Each element is read back only by the
// iteration that wrote it, so this holds under any loop split.
struct CachedRowValue {
  int phase = -1;
  int param = -1;  // the output parameter that holds it
  const Expr* value = nullptr;
};

Accumulation accumulation(const ReducePhase& phase);
bool reads_accumulator(const ExprPtr& e);
Accumulation gpu_accumulation(const ReducePhase& phase);
bool is_output_param(const LoopKernel& k, size_t p);
std::string params_and_sizes(const LoopKernel& k, int num_symbols, const Dialect& dialect);
std::string product(const std::vector<std::string>& extents);
bool contains(const ExprPtr& tree, const Expr* target);
bool has_transcendental(const ExprPtr& tree);
CachedRowValue find_cached_row_value(const LoopKernel& k);
void collect_row_loads(const ExprPtr& e, const LoopKernel& k, std::set<int>* params);
std::set<int> streamed_inputs(const LoopKernel& k);
std::string row_loop(const LoopKernel& k, const Dialect& dialect, bool split);
std::string column_loop(const LoopKernel& k, const Dialect& dialect);

// The layout of a register-held row: each thread holds `chunks` runs of `width` consecutive
// elements, run c of thread t starting at element (c * threads + t) * width. A warp's runs
// are contiguous (coalesced), and each run is one access of up to 16 bytes per buffer.
// `width` divides the row, so a run lies wholly inside it or wholly past its end.
struct HeldRow {
  int64_t chunks = 0;
  int width = 1;
  int64_t elements() const { return chunks * width; }
};

void collect_row_load_exprs(const ExprPtr& e, const LoopKernel& k, std::vector<const Expr*>* out);
constexpr int64_t kMaxRegisterElements = 16;
int64_t constant_row_length(const LoopKernel& k);
HeldRow held_row(const LoopKernel& k);
void collect_loads(const ExprPtr& e, std::vector<const Expr*>* out);
std::string block_row_loop(const LoopKernel& k);
int64_t register_elements(const LoopKernel& k);

}  // namespace kiln::emit
