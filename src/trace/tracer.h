// Tracer: records the ops a function applies into a pure Graph, functionalizing mutation.
//
// What becomes what:
//   - the call's tensors are graph inputs (dims marked dynamic become size symbols; dynamic
//     dims of equal example size share a symbol, and the guards then require them equal);
//   - a real tensor the function captures from before the trace is a graph input too, bound
//     to that tensor at every call ("captured by reference"), or a constant under
//     freeze_captured; a real tensor made during the trace (a factory) is a constant;
//   - every op recorded while the tracer is installed is a node, whatever its inputs.
//
// Mutation: each tensor the trace knows sits in a slot (the storage it would share eagerly)
// as a chain of view steps from it. An in-place write (assign) computes the slot's new value
// by scattering through the inverse of the steps, and every alias of the slot re-derives its
// value from the slot when next read. At the end, each graph input whose slot changed gets
// its final value as an extra graph output, which the caller writes back after each run.
#pragma once

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "eager/dispatch.h"
#include "graph/graph.h"

namespace kiln {

class Storage;

struct TraceResult {
  // Inputs: the call's tensors, its graph scalars, then the captured ones. Outputs: the function's
  // results, then the new values of the mutated inputs.
  Graph graph;
  std::vector<std::weak_ptr<TensorImpl>> captured;  // graph inputs after the call's tensors
  struct WriteBack {
    size_t output;  // a graph output
    size_t input;   // the graph input it is written into after each run
  };
  std::vector<WriteBack> write_backs;
  // Per function result: the graph input that result is (the function returned that very
  // tensor, as `return x.add_(1)` does), or -1.
  std::vector<int32_t> returns_input;
  // freeze_captured: the storages folded as constants, with their versions at the trace.
  struct Frozen {
    std::weak_ptr<Storage> storage;
    uint64_t version;
    std::string name;
  };
  std::vector<Frozen> frozen;
  // The random draws the graph makes per call; when > 0 its last input is the generator
  // state "rng" (i64[2]: seed, first offset), and each call takes this many offsets.
  int64_t rng_draws = 0;
  // The call's scalars (indices into Flat::scalars) whose values the trace needed.
  std::vector<int32_t> specialized_scalars;
};

class Tracer : public OpRecorder {
 public:
  Tracer(std::string graph_name, bool freeze_captured);

  std::vector<Tensor> add_inputs(const std::vector<Tensor>& examples);
  // A graph scalar: a 0-d f64 input after the call's tensors (added after add_inputs,
  // before anything is captured).
  Tensor add_scalar_input();
  // A tangent of a joint forward+backward trace: an input after all others (the gradient
  // of a result), added once the forward is traced.
  Tensor add_tangent_input(const TensorType& type);
  // The real tensors captured so far (graph inputs after the call's tensors and scalars).
  const std::vector<Tensor>& captured() const { return captured_; }
  Tensor record(Op op, const std::vector<Tensor>& inputs, const Attrs& attrs) override;
  void assign(const Tensor& self, const Tensor& value) override;
  Tensor copy(const Tensor& t) override;
  const SymShape& symbolic_shape(const Tensor& traced) const override;
  std::string describe_symbol(int32_t sym) const override;
  uint64_t session() const override { return session_; }
  uint64_t first_serial() const override { return first_serial_; }
  Tensor rng_draw(int64_t* draw) override;
  void depends_on_values(const Tensor& captured, const char* why) override;
  void specialize_scalars(const std::vector<int32_t>& scalars) override;
  // Ends the trace: `outputs` are the function's results.
  TraceResult finish(const std::vector<Tensor>& outputs);

 private:
  // Values in trace order; the graph numbers inputs (the call's, then captured, then the
  // generator state), then constants, then nodes.
  enum class Kind { Input, Captured, Rng, Tangent, Constant, Node };
  struct Value {
    Kind kind;
    size_t index;  // into its kind's list
    TensorType type;
  };
  struct PendingNode {
    Op op;
    std::vector<int32_t> inputs;  // trace value ids
    Attrs attrs;
    int32_t value;  // its output's trace value id
  };
  struct ViewStep {
    Op op;
    Attrs attrs;
  };
  // A mutable tensor: what one storage holds, eagerly.
  struct Slot {
    int32_t value;           // what it holds now
    int32_t initial;         // what it held when the trace first saw it
    int64_t generation = 0;  // bumped by each write
    int32_t input = -1;      // the graph input it is, or -1
    bool frozen = false;     // a captured tensor folded as a constant
    std::string what;        // for errors: "input 1", "captured tensor 0"
  };
  // Where one tensor sits: `steps` of views from its slot.
  struct Alias {
    int32_t slot;
    std::vector<ViewStep> steps;
    int32_t value;       // its value as of `generation`
    int64_t generation;  // the slot's generation `value` was derived at
  };

  int32_t value_of(const Tensor& t);
  int32_t alias_of(const Tensor& t);
  int32_t add_value(Kind kind, size_t index, TensorType type);
  int32_t emit(Op op, std::vector<int32_t> inputs, const Attrs& attrs);
  int32_t new_slot(int32_t value, std::string what);
  int32_t new_alias(int32_t slot, std::vector<ViewStep> steps, int32_t value);
  // The value an inverse of `step` gives: `base` with `written` scattered where the view
  // `step` of base looks.
  int32_t scatter(const ViewStep& step, int32_t base, int32_t written);
  int32_t scatter_slice(const ViewStep& step, int32_t base, int32_t written);
  int32_t scatter_strided_slice(const ViewStep& step, int32_t base, int32_t written);
  Tensor traced_tensor(int32_t value, int32_t alias, const Shape* strides, int64_t offset);

  std::string name_;
  bool freeze_captured_;
  Device device_ = Device::cpu;  // the first input's (or captured tensor's): traced tensors'
  bool device_known_ = false;
  uint64_t session_;
  uint64_t first_serial_;
  std::vector<int64_t> bindings_;            // symbol → example size
  std::vector<std::string> symbol_origins_;  // symbol → where it came from, for messages
  std::vector<Value> values_;
  size_t num_inputs_ = 0;
  std::vector<Tensor> captured_;  // strong while tracing: impl pointers stay unique
  std::vector<Tensor> constants_;
  std::vector<PendingNode> nodes_;
  std::vector<Slot> slots_;
  std::vector<Alias> aliases_;
  std::vector<int32_t> input_aliases_;  // the call's tensors' aliases
  std::unordered_map<const TensorImpl*, int32_t> real_aliases_;
  std::vector<Tensor> real_seen_;  // keeps real_aliases_' keys alive and unique
  std::vector<TraceResult::Frozen> frozen_;
  Tensor rng_state_;  // traced, once the function draws
  int64_t rng_draws_ = 0;
  size_t num_tangents_ = 0;
  std::vector<int32_t> specialized_scalars_;
};

}  // namespace kiln
