// The loop IR: kernels as iteration spaces with expression trees to store, independent of
// the target (dialects of the C emitter render it), and the program that runs them.
// Expressions compute in the compute type of their dtype (f16/bf16 in f32); the kinds of
// kernel are described at LoopKernel.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "graph/attrs.h"
#include "graph/graph.h"
#include "loop/index.h"
#include "loop/schedule.h"

namespace kiln {

struct Expr;
using ExprPtr = std::shared_ptr<const Expr>;

// How a load or store relates to its row kernel's iteration, decided by lowering: the
// kernel's own element of its flat domain (row i0, element i1), the row itself (i0), or
// any other place. Pointwise kernels leave every access `other`.
enum class Access : uint8_t { other, row_element, row };

// A value expression: a dtype and one node of three kinds, each with only its own fields
// and built only through its factory below, which checks it. Nodes are immutable (ExprPtr
// is a pointer to const) and may be shared within a kernel.
struct Expr {
  // A parameter's element.
  struct Load {
    int param;       // kernel parameter (outputs come first)
    IndexPtr index;  // element offset
    Access access;
  };
  // A pointwise op of operands.
  struct Apply {
    Op op;
    Attrs attrs;  // clamp bounds, cast dtype, a binary op's scalar operand
    std::vector<ExprPtr> args;
  };
  // The result of a reduction phase for the current row.
  struct Accumulator {
    int phase;
  };
  // The value of an index expression (i64): which element of a random draw or an arange the
  // kernel's element is (make_random, make_arange).
  struct Position {
    IndexPtr index;
    Access access;
  };
  enum class Kind { Load, Apply, Accumulator, Position };  // the order of node's alternatives

  DType dtype;  // the dtype of the value (compute happens in its compute type)
  std::variant<Load, Apply, Accumulator, Position> node;

  Kind kind() const { return static_cast<Kind>(node.index()); }
  // The node as its kind; asking for another kind is a bug (std::bad_variant_access).
  const Load& load() const { return std::get<Load>(node); }
  const Apply& apply() const { return std::get<Apply>(node); }
  int phase() const { return std::get<Accumulator>(node).phase; }
  const Position& position() const { return std::get<Position>(node); }
  // An Apply's operands; leaves have none.
  const std::vector<ExprPtr>& operands() const;
};

// Parameter `param` at `index`.
ExprPtr make_load(DType dtype, int param, IndexPtr index, Access access = Access::other);
// A pointwise op of `args` (arity as ops.def says; one argument for a binary op with a
// `scalar` attribute). Throws Error for anything else.
ExprPtr make_apply(Op op, DType dtype, Attrs attrs, std::vector<ExprPtr> args);
// The result of reduction phase `phase` for the current row.
ExprPtr make_accumulator(DType dtype, int phase);
// Element `element` of random draw `draw` (the node's attribute) of the generator state
// whose seed and offset are `seed` and `offset` (i64 loads): an Apply of rand or randn (a
// floating `dtype`) of the three operands seed, offset and the element's Position, which
// the emitter renders through support/philox.inc, the eager kernel's own definition.
ExprPtr make_random(Op op, DType dtype, int64_t draw, ExprPtr seed, ExprPtr offset,
                    IndexPtr element, Access access = Access::other);
// Element `element` of arange (start + element * step, computed in f64 as the eager kernel
// does) of a `dtype` result: an Apply of arange of the 0-d start's value and the Position.
ExprPtr make_arange(DType dtype, double step, ExprPtr start, IndexPtr element,
                    Access access = Access::other);

// A value written by a kernel: parameter `param` at `index`.
struct Store {
  int param;
  IndexPtr index;
  ExprPtr value;
  Access access = Access::other;
};

// One reduction of a row kernel: `op` (sum, prod, amax, amin) of `value` over the row.
struct ReducePhase {
  Op op;
  ExprPtr value;
  DType dtype;  // the reduction's result dtype
};

// Pointwise kernels iterate over `shape` with loop variables i0..i{rank-1} (or one flat i0
// when every access is the output's own linear index or a constant) and perform `stores`.
// Row kernels iterate rows i0 over the kept dims of `shape` and, per row, run each phase's
// loop over the reduced dims (variable i1), then the row stores (at the row's index), then
// a loop writing the element stores. Accumulator k is phase k's result for the row.
// Foreach kernels run independent pointwise `parts` (the same ops over different tensors,
// like _foreach_add) one after another in one launch; their params are the parts' params
// concatenated, each part's outputs first among its own. A pointwise kernel may store
// several values (its root and the values stored with it), all at the element's index.
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
  // Row kernels with trailing reduced dims (`flat`): accesses at the domain element's or
  // the row's linear index are marked (Access) and render as i0 * R + i1 and i0.
  std::vector<ValueId> params;  // graph values behind the parameters
  std::vector<DType> param_dtypes;
  int num_outputs = 1;  // params [0, num_outputs) are written (foreach: see writes_param)
  std::vector<ReducePhase> phases;
  std::vector<Store> row_stores;
  std::vector<Store> stores;      // element stores
  std::vector<LoopKernel> parts;  // foreach kernels
  Schedule schedule;              // how its loops map onto the machine (loop/schedule.h)
};

// Whether kernel `k` writes its parameter `p`: p < num_outputs, or for a foreach kernel,
// one of a part's outputs (each part's come first among its own params).
bool writes_param(const LoopKernel& k, size_t p);
// Whether `e` reads a reduction phase's result (an Accumulator node).
bool reads_accumulator(const ExprPtr& e);
// Calls `fn` once for each node reachable from `roots`, operands after their node, in order
// (expressions are DAGs: a shared node is visited once, so no walk is exponential).
void visit_nodes(const std::vector<const Expr*>& roots, const std::function<void(const Expr&)>& fn);
// Whether `e` uses its element's position (a random draw, an arange).
bool reads_position(const ExprPtr& e);
// Whether `e` is a load at a constant index (one element whatever the kernel's element).
bool is_constant_load(const Expr& e);
// The widest element size (bytes) among the parameters a kernel writes or reads per
// element, not only at a constant index (like the generator state): what its 16-byte
// vectors can hold (Schedule::vector_width, held rows' runs).
size_t widest_element(const LoopKernel& k);

// The kind of a kernel as its name and its launch say it: poi (pointwise), red (a row
// kernel of one reduction and no element stores), per (any other row kernel: a persistent
// reduction, like softmax), for (foreach).
const char* kernel_kind_word(const LoopKernel& kernel);

// One step of a program: launch kernel `kernel`, or run graph node `node` through the eager
// interpreter's op executor ("ext": library calls and ops not lowered to loops yet).
struct Step {
  enum class Kind { Kernel, Ext } kind;
  int kernel = -1;
  int node = -1;
};

struct Program {
  Graph graph;
  Device device = Device::cpu;  // where its kernels run (set with their schedules)
  std::vector<LoopKernel> kernels;
  std::vector<Step> steps;
  // Values a kernel reads, which must be contiguous buffers when it runs.
  std::vector<bool> read_by_kernel;
};

// The program as text, for logs (KILN_LOGS=lowering) and the lowering tests' Expected
// files: each kernel with its kind, domain, parameters and stores, expressions read once
// inline and shared ones as numbered temporaries, in a deterministic order.
std::string print_program(const Program& program);
// `graph` names the parameters' values (else v<id>).
std::string print_kernel(const LoopKernel& kernel, const Graph* graph = nullptr);

// Checks what the emitter relies on; throws Error naming the kernel and what is wrong.
//   every parameter has a dtype, outputs come first, stores write outputs, loads read
//   parameters of their dtype; loop variables are in the kernel's domain (row kernels: i0
//   and i1), symbols in the graph's; accumulators name phases of their row kernel and only
//   row kernels mark accesses; Apply nodes are pointwise ops of their arity; steps name
//   existing kernels and nodes; foreach parts are pointwise; every kernel is scheduled for
//   the program's device, with axes that kernel and device have (a held row's width
//   divides the row, block sizes are whole warps, ...).
void verify_program(const Program& program);

}  // namespace kiln
