// Tracer: records the ops a function applies to traced tensors into a Graph. Inputs become
// graph inputs (dims marked dynamic become size symbols; dynamic dims of equal example size
// share a symbol, and the guards then require them equal); real tensors the function
// captures become constants; traced tensors have sizes (evaluated at the example) but no data.
#pragma once

#include <string>
#include <unordered_map>
#include <vector>

#include "eager/dispatch.h"
#include "graph/graph.h"

namespace kiln {

class Tracer : public OpRecorder {
 public:
  explicit Tracer(std::string graph_name);

  std::vector<Tensor> add_inputs(const std::vector<Tensor>& examples);
  Tensor record(Op op, const std::vector<Tensor>& inputs, const Attrs& attrs) override;
  const SymShape& symbolic_shape(const Tensor& traced) const override;
  uint64_t session() const override { return session_; }
  // Ends the trace: `outputs` (traced, or real tensors that become constants) are returned.
  Graph finish(const std::vector<Tensor>& outputs);

 private:
  // Values in trace order; the graph numbers inputs, then constants, then nodes.
  enum class Kind { Input, Constant, Node };
  struct Value {
    Kind kind;
    size_t index;  // into the inputs, constants_ or nodes_ list
    TensorType type;
  };
  struct PendingNode {
    Op op;
    std::vector<int32_t> inputs;  // trace value ids
    Attrs attrs;
    int32_t value;  // its output's trace value id
  };

  int32_t value_of(const Tensor& t);
  Tensor traced_tensor(int32_t value);

  std::string name_;
  uint64_t session_;
  std::vector<int64_t> bindings_;  // symbol → example size
  std::vector<Value> values_;
  size_t num_inputs_ = 0;
  std::vector<Tensor> constants_;
  std::unordered_map<const TensorImpl*, int32_t> constant_values_;
  std::vector<PendingNode> nodes_;
};

}  // namespace kiln
