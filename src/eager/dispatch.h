// The single entry of every op: call_op() either records the op into the graph of an active
// trace (when an input is a traced value) or runs it at once through run_op(), the eager
// interpreter's op executor. The public op functions and Tensor methods are thin wrappers.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "graph/attrs.h"
#include "graph/dim.h"
#include "graph/infer.h"
#include "graph/op.h"
#include "kiln/tensor.h"

namespace kiln {

// Implemented by the tracer; installed per thread while compile() traces a function. While
// one is installed every op records, whether or not its inputs are traced: an op on a
// captured tensor must read that tensor when the compiled function runs, not when it traced.
class OpRecorder {
 public:
  virtual ~OpRecorder() = default;
  virtual Tensor record(Op op, const std::vector<Tensor>& inputs, const Attrs& attrs) = 0;
  // self ← value, functionalized: `value` (traced, of self's dtype and shape) becomes what
  // `self` and every tensor aliasing it hold from now on in the trace.
  virtual void assign(const Tensor& self, const Tensor& value) = 0;
  // A traced copy of `t` that aliases nothing (clone(), contiguous() of a strided tensor).
  virtual Tensor copy(const Tensor& t) = 0;
  // The symbolic shape of a value traced by this recorder.
  virtual const SymShape& symbolic_shape(const Tensor& traced) const = 0;
  // Where size symbol `sym` came from, for messages: "dim 0 of input 1".
  virtual std::string describe_symbol(int32_t sym) const = 0;
  virtual uint64_t session() const = 0;
  // Storages with a smaller serial existed before the trace began (captured tensors).
  virtual uint64_t first_serial() const = 0;
  // The trace read `captured`'s values at trace time (a copy to another device): the
  // compiled function must trace again once they change.
  virtual void depends_on_values(const Tensor& captured, const char* why) = 0;
  // A random draw: the traced generator state (the graph's rng input) and, in *draw, this
  // draw's index among the graph's draws.
  virtual Tensor rng_draw(int64_t* draw) = 0;
  // The trace needed the values of these scalar arguments (SymFloat::guard_double): its
  // graph serves only calls that pass the same values.
  virtual void specialize_scalars(const std::vector<int32_t>& scalars) = 0;
};

// Installed by autograd (src/autograd) the first time a tensor requires grad. Each records
// history only when grad mode is on and an input requires grad.
struct GradHooks {
  // `out` = op(inputs): its derivative node.
  void (*op)(Op op, const std::vector<Tensor>& inputs, const Attrs& attrs, const Tensor& out);
  // `out` is a copy of `input` (clone, contiguous, to(Device)): the gradient passes through.
  void (*copy)(const Tensor& input, const Tensor& out);
  // self ← value, in place (called before the write): self takes value's history.
  void (*assign)(const Tensor& self, const Tensor& value);
};
void set_grad_hooks(const GradHooks* hooks);
const GradHooks* grad_hooks();
// Whether any of `inputs` requires grad, or has history an in-place op overtook (autograd
// is called only then: to record, or to refuse).
bool any_requires_grad(const std::vector<Tensor>& inputs);

// The recorder active on this thread, or null.
OpRecorder* active_recorder();
// Installs `recorder` on this thread for the scope's lifetime.
class RecorderScope {
 public:
  explicit RecorderScope(OpRecorder* recorder);
  ~RecorderScope();
  RecorderScope(const RecorderScope&) = delete;
  RecorderScope& operator=(const RecorderScope&) = delete;

 private:
  OpRecorder* previous_;
};

Tensor call_op(Op op, const std::vector<Tensor>& inputs, const Attrs& attrs = {});
// Runs `op` eagerly on real tensors: infers the result type, then runs the reference kernel.
Tensor run_op(Op op, const std::vector<Tensor>& inputs, const Attrs& attrs);
// The symbolic shape of `t`: its recorder's view for a traced value, constants otherwise.
SymShape symbolic_shape(const Tensor& t);
// A size as a graph dim: a symbolic size of the active trace as its symbol (ShapeError
// naming `op` for one of a trace that has ended).
Dim dim_of(const SymInt& size, const char* op);
// A factory's sizes as a graph shape, checked against kiln's limits (ShapeError naming `op`).
SymShape sym_shape_of(const SymIntList& sizes, const char* op);
// An eager factory's sizes, which are numbers (no trace is active), checked as a tensor's.
Shape concrete_sizes(const SymIntList& sizes);
// Reference-kernel entry points by op family (src/eager/*.cc).
Tensor eager_unary(Op op, const Tensor& x, const Attrs& attrs, const TensorType& out);
Tensor eager_binary(Op op, const std::vector<Tensor>& in, const Attrs& attrs,
                    const TensorType& out);
Tensor eager_where(const std::vector<Tensor>& in, const TensorType& out);
Tensor eager_clamp(const Tensor& x, const Attrs& attrs, const TensorType& out);
Tensor eager_reduce(Op op, const Tensor& x, const Attrs& attrs, const TensorType& out);
Tensor eager_softmax(Op op, const Tensor& x, const Attrs& attrs);
Tensor eager_layer_norm(const std::vector<Tensor>& in, const Attrs& attrs);
// A batched product's operands broadcast to each other: a [batch..., n, k] and b
// [batch..., k, m] (expanded views; 1-D operands already given their unit dim).
struct BatchedOperands {
  Tensor a, b;
  Shape batch, c_shape;  // c: [batch..., n, m]
  int64_t n = 0, k = 0, m = 0;
};
BatchedOperands broadcast_operands(const Tensor& a, const Tensor& b);
// A product's epilogue ("relu", "gelu_tanh" or "") applied by the eager op executor.
Tensor apply_epilogue(const Tensor& product, const std::string& epilogue);

// matmul, bmm, linear; an `epilogue=relu` attribute applies relu to the result.
Tensor eager_matmul(Op op, const std::vector<Tensor>& in, const Attrs& attrs,
                    const TensorType& out);
// softmax(q @ k^T * scale, -1) @ v (or / scale where attrs say divide): on the GPU one fused
// kernel where it supports the shapes, else (and on the CPU) those ops in turn.
Tensor eager_attention(const std::vector<Tensor>& in, const Attrs& attrs);
Tensor eager_arange(const Tensor& start, const Attrs& attrs, const TensorType& out);
Tensor eager_movement(Op op, const std::vector<Tensor>& in, const Attrs& attrs,
                      const TensorType& out);
// im2col and col2im (eager/windows.cc).
Tensor eager_windows(Op op, const Tensor& x, const Attrs& attrs, const TensorType& out);
Tensor eager_view(Op op, const Tensor& x, const Attrs& attrs, const TensorType& out);
// rand, randn: the draw of the generator state `state` (i64[2]: seed, offset) at attrs' draw.
Tensor eager_random(Op op, const Tensor& state, const Attrs& attrs, const TensorType& out);
// Takes `draws` consecutive offsets of the global generator: (seed, first offset).
std::pair<uint64_t, uint64_t> take_draws(uint64_t draws);
// Where a view op puts a tensor's elements: the sizes, strides (in elements) and offset the
// view `op` of a tensor laid out as `in` has, or nullopt where eager copies instead (a
// reshape that the strides cannot express). The tracer asks it too, so that a traced view
// aliases what the eager one would.
struct ViewGeometry {
  Shape sizes, strides;
  int64_t offset = 0;
};
std::optional<ViewGeometry> view_geometry(Op op, const Attrs& attrs, const ViewGeometry& in,
                                          const Shape& out_shape);

// Copies `src` into `dst` (same sizes, any strides, dtypes and devices), converting elements.
void copy_into(const Tensor& dst, const Tensor& src);
// `x` converted to `dtype` (x itself when it already has it).
Tensor cast(const Tensor& x, DType dtype);
// A contiguous copy of `x` on `device`.
Tensor copy_to_device(const Tensor& x, Device device);
// A contiguous copy of `x` (x itself when already contiguous).
Tensor contiguous_eager(const Tensor& x);

}  // namespace kiln
