// Row kernels (reductions and the pointwise work around them), shared by the emitter's
// files: what a reduction phase accumulates in, the analyses of a row kernel's loads and
// values, the CPU loops (rows split across threads, or columns), and the GPU form (a row
// per block, held in registers as its schedule says; cuda_row_loop.cc). Every choice of
// form comes from the kernel's Schedule (loop/schedule.h). Internal to src/codegen.
#pragma once

#include <set>
#include <string>
#include <vector>

#include "codegen/c_emitter.h"
#include "loop/kernel.h"

namespace kiln::emit {

// The accumulator of a reduction phase: f64 for floating sums and products (the oracle's
// precision), i64 for integer ones, the value's own type for max and min.
// Format strings use {a} (the accumulator), {v} (the element's value) and {n} (a NaN flag).
struct Accumulation {
  std::string type, init, update;
  // What the loop reduces, as (operator, variable) pairs: the dialect's reduction clauses
  // (reduction_clauses) let it run in any order.
  std::vector<std::pair<std::string, std::string>> reductions;
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
// The dialect's clauses for acc's reductions ({a} and {n} left to fill).
std::string reduction_clauses(const Accumulation& acc, const Dialect& dialect);
Accumulation gpu_accumulation(const ReducePhase& phase);
std::string params_and_sizes(const LoopKernel& k, int num_symbols, const Dialect& dialect);
// Its two halves: the size symbols s<i>, and the params p<i> taken from `buffers`.
std::string size_declarations(int num_symbols);
std::string param_declarations(const LoopKernel& k, const Dialect& dialect,
                               const std::string& buffers);
// The product of extents as C text, computed in int64_t.
std::string product(const std::vector<std::string>& extents);
bool contains(const ExprPtr& tree, const Expr* target);
bool has_transcendental(const ExprPtr& tree);
CachedRowValue find_cached_row_value(const LoopKernel& k);
void collect_row_loads(const ExprPtr& e, std::set<int>* params);
std::set<int> streamed_inputs(const LoopKernel& k);
std::string row_loop(const LoopKernel& k, const Dialect& dialect, bool split);
std::string column_loop(const LoopKernel& k, const Dialect& dialect);

void collect_row_load_exprs(const ExprPtr& e, std::vector<const Expr*>* out);
void collect_loads(const ExprPtr& e, std::vector<const Expr*>* out);
std::string block_row_loop(const LoopKernel& k);

}  // namespace kiln::emit
