#include "trace/tracer.h"

#include <fmt/format.h>

#include <atomic>
#include <map>

#include "kiln/error.h"
#include "tensor/tensor_impl.h"

namespace kiln {

namespace {
std::atomic<uint64_t> g_next_session{1};
}

Tracer::Tracer(std::string graph_name)
    : name_(std::move(graph_name)), session_(g_next_session.fetch_add(1)) {}

std::vector<Tensor> Tracer::add_inputs(const std::vector<Tensor>& examples) {
  std::map<int64_t, int32_t> symbol_of_size;
  std::vector<Tensor> traced;
  for (size_t i = 0; i < examples.size(); ++i) {
    const Tensor& ex = examples[i];
    if (!ex.defined()) throw Error(fmt::format("compile: argument tensor {} is undefined", i));
    if (ex.impl()->is_traced())
      throw Error("compile: a traced tensor was passed into a compiled function");
    TensorType type{ex.dtype(), const_shape(ex.sizes())};
    for (int64_t d = 0; d < ex.dim(); ++d) {
      if (!(ex.impl()->dynamic_dims >> d & 1)) continue;
      int64_t size = ex.sizes()[d];
      auto [it, added] = symbol_of_size.emplace(size, static_cast<int32_t>(bindings_.size()));
      if (added) bindings_.push_back(size);
      type.shape[d] = Dim::symbol(it->second);
    }
    values_.push_back({Kind::Input, num_inputs_++, type});
    traced.push_back(traced_tensor(static_cast<int32_t>(values_.size() - 1)));
  }
  return traced;
}

Tensor Tracer::traced_tensor(int32_t value) {
  const TensorType& type = values_[static_cast<size_t>(value)].type;
  auto impl = std::make_shared<TensorImpl>();
  for (const Dim& d : type.shape) impl->sizes.push_back(d.eval(bindings_));
  impl->strides = contiguous_strides(impl->sizes);
  impl->dtype = type.dtype;
  impl->trace_value = value;
  impl->trace_session = session_;
  return Tensor(std::move(impl));
}

int32_t Tracer::value_of(const Tensor& t) {
  if (t.impl()->is_traced()) return t.impl()->trace_value;
  auto it = constant_values_.find(t.impl());
  if (it != constant_values_.end()) return it->second;
  // A captured real tensor: a constant of the graph (kept by reference when contiguous).
  Tensor value = t.contiguous();
  values_.push_back(
      {Kind::Constant, constants_.size(), {value.dtype(), const_shape(value.sizes())}});
  constants_.push_back(value);
  int32_t id = static_cast<int32_t>(values_.size() - 1);
  constant_values_.emplace(t.impl(), id);
  return id;
}

Tensor Tracer::record(Op op, const std::vector<Tensor>& inputs, const Attrs& attrs) {
  PendingNode node{op, {}, attrs, -1};
  std::vector<const TensorType*> types;
  for (const Tensor& t : inputs) node.inputs.push_back(value_of(t));
  for (int32_t v : node.inputs) types.push_back(&values_[static_cast<size_t>(v)].type);
  TensorType type = infer_type(op, attrs, types);
  node.value = static_cast<int32_t>(values_.size());  // after value_of, which may add values
  values_.push_back({Kind::Node, nodes_.size(), std::move(type)});
  nodes_.push_back(std::move(node));
  return traced_tensor(static_cast<int32_t>(values_.size() - 1));
}

const SymShape& Tracer::symbolic_shape(const Tensor& traced) const {
  return values_.at(static_cast<size_t>(traced.impl()->trace_value)).type.shape;
}

Graph Tracer::finish(const std::vector<Tensor>& outputs) {
  std::vector<int32_t> out_values;
  for (const Tensor& t : outputs) {
    if (!t.defined()) throw Error("compile: the traced function returned an undefined tensor");
    if (t.impl()->is_traced() && t.impl()->trace_session != session_)
      throw Error("compile: the traced function returned a tensor from another trace");
    out_values.push_back(value_of(t));
  }
  GraphBuilder builder(name_);
  builder.use_symbols(static_cast<int32_t>(bindings_.size()));
  // Graph ids: inputs, then constants, then nodes, each in trace order.
  auto graph_id = [&](int32_t v) {
    const Value& value = values_[static_cast<size_t>(v)];
    size_t base = value.kind == Kind::Input      ? 0
                  : value.kind == Kind::Constant ? num_inputs_
                                                 : num_inputs_ + constants_.size();
    return static_cast<ValueId>(base + value.index);
  };
  for (const Value& v : values_)
    if (v.kind == Kind::Input) builder.add_input(fmt::format("in{}", v.index), v.type);
  for (size_t c = 0; c < constants_.size(); ++c)
    builder.add_constant(fmt::format("c{}", c),
                         {constants_[c].dtype(), const_shape(constants_[c].sizes())},
                         constants_[c]);
  for (const PendingNode& node : nodes_) {  // typed as recorded: inferred once
    std::vector<ValueId> ins;
    for (int32_t v : node.inputs) ins.push_back(graph_id(v));
    builder.add_inferred_node(node.op, std::move(ins), node.attrs,
                              values_[static_cast<size_t>(node.value)].type);
  }
  std::vector<ValueId> outs;
  for (int32_t v : out_values) outs.push_back(graph_id(v));
  builder.set_outputs(outs);
  Graph graph = builder.finish();
  graph.size_hints = bindings_;
  return graph;
}

}  // namespace kiln
