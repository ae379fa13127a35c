// The loop IR: kernels as an iteration space and an expression tree, independent of the
// target (the cpp and cuda dialects both render it), and the program that runs them.
//
// A pointwise kernel iterates over its output's shape (loop variable i<d> for dim d, or one
// flat variable i0 when every access is the output's own linear index) and stores `body`
// at each point. Expressions compute in the compute type of their dtype (f16/bf16 in f32).
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
  enum class Kind { Load, Number, Apply };
  Kind kind;
  DType dtype;          // the dtype of the value (compute happens in its compute type)
  int param = -1;       // Load: kernel parameter (0 is the output)
  IndexPtr index;       // Load: element offset
  double number = 0;    // Number
  bool integer = false; // Number: an integer literal
  Op op = Op::add;      // Apply: the op (pointwise ops only)
  Attrs attrs;          // Apply: clamp bounds, cast dtype
  std::vector<ExprPtr> args;
};

struct LoopKernel {
  std::string name;                 // cpp_poi_fused_add_cos_sin_0
  SymShape shape;                   // the iteration space (the output's shape)
  bool flat = false;                // one loop over the output's elements
  std::vector<ValueId> params;      // graph values behind the parameters; [0] is the output
  std::vector<DType> param_dtypes;
  IndexPtr store_index;
  ExprPtr body;
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
