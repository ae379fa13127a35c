// The loop IR: kernels as iteration spaces with expression trees to store, independent of
// the target (dialects of the C emitter render it), and the program that runs them.
// Expressions compute in the compute type of their dtype (f16/bf16 in f32); the kinds of
// kernel are described at LoopKernel.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "graph/attrs.h"
#include "graph/graph.h"
#include "loop/index.h"

namespace kiln {

struct Expr;
using ExprPtr = std::shared_ptr<const Expr>;

struct Expr {
  enum class Kind { Load, Apply, Accumulator };
  Kind kind;
  DType dtype;      // the dtype of the value (compute happens in its compute type)
  int param = -1;   // Load: kernel parameter (outputs come first)
  IndexPtr index;   // Load: element offset
  Op op = Op::add;  // Apply: the op (pointwise ops only)
  Attrs attrs;      // Apply: clamp bounds, cast dtype
  std::vector<ExprPtr> args;
  int accumulator = -1;  // Accumulator: the reduction phase whose result this is
};

// A value written by a kernel: parameter `param` at `index`.
struct Store {
  int param;
  IndexPtr index;
  ExprPtr value;
};

// One reduction of a row kernel: `op` (sum, prod, amax, amin) of `value` over the row.
struct ReducePhase {
  Op op;
  ExprPtr value;
  DType dtype;  // the reduction's result dtype
};

// Pointwise kernels iterate over `shape` with loop variables i0..i{rank-1} (or one flat i0
// when every access is the output's own linear index) and perform `stores`.
// Row kernels iterate rows i0 over the kept dims of `shape` and, per row, run each phase's
// loop over the reduced dims (variable i1), then the row stores (at the row's index), then
// a loop writing the element stores. Accumulator k is phase k's result for the row.
// Foreach kernels run independent pointwise `parts` (the same ops over different tensors,
// like _foreach_add) one after another in one launch; their params are the parts' params
// concatenated, each part's output first among its own.
struct LoopKernel {
  enum class Kind { Pointwise, Row, Foreach };
  Kind kind = Kind::Pointwise;
  std::string name;                   // cpp_poi_fused_add_cos_sin_0, cpp_per_fused_..._1
  SymShape shape;                     // pointwise: the output's shape; row: the domain
  std::vector<int64_t> reduced_dims;  // row kernels: the dims each phase reduces (sorted)
  bool flat = false;                  // loads/stores use the linear index
  // Row kernels whose reduced dims lead (sum over dim 0): rows are the contiguous index, so
  // the reduction loop runs outside a vectorized loop over a block of rows.
  bool columns = false;
  // Row kernels with trailing reduced dims: the rendered linear index of a domain element
  // and of a row; accesses that render to these become i0 * R + i1 and i0.
  std::string full_index_text, row_index_text;
  std::vector<ValueId> params;  // graph values behind the parameters
  std::vector<DType> param_dtypes;
  int num_outputs = 1;  // params [0, num_outputs) are written
  std::vector<ReducePhase> phases;
  std::vector<Store> row_stores;
  std::vector<Store> stores;      // element stores
  std::vector<LoopKernel> parts;  // foreach kernels
};

// One step of a program: launch kernel `kernel`, or run graph node `node` through the eager
// interpreter's op executor ("ext": library calls and ops not lowered to loops yet).
struct Step {
  enum class Kind { Kernel, Ext } kind;
  int kernel = -1;
  int node = -1;
};

struct Program {
  Graph graph;
  std::vector<LoopKernel> kernels;
  std::vector<Step> steps;
  // Values a kernel reads, which must be contiguous buffers when it runs.
  std::vector<bool> read_by_kernel;
};

}  // namespace kiln
