#include "eager/interpreter.h"

#include <fmt/format.h>

#include <cmath>

#include "eager/dispatch.h"
#include "graph/infer.h"
#include "kiln/error.h"
#include "support/limits.h"
#include "tensor/tensor_impl.h"

namespace kiln {

std::vector<int64_t> symbol_limits(const Graph& g) {
  std::vector<int64_t> scale(static_cast<size_t>(g.num_symbols), 1);
  // Per symbol, the largest coefficient and the highest degree among the nodes' element
  // counts (coeff * s0 * s0 ... : a monomial); the limit keeps coeff * s^degree within
  // kMaxElements for every symbol at its limit (conservative for mixed monomials).
  std::vector<int64_t> degree(static_cast<size_t>(g.num_symbols), 1);
  for (size_t n = 0; n < g.nodes.size(); ++n) {
    const Monomial numel = shape_monomial(g.nodes[n].type.shape, "a node's shape");
    for (int32_t k : numel.syms) {
      if (k < 0 || k >= g.num_symbols) continue;
      const size_t sk = static_cast<size_t>(k);
      scale[sk] = std::max(scale[sk], numel.coeff);
      degree[sk] = std::max<int64_t>(degree[sk], static_cast<int64_t>(numel.syms.size()));
    }
  }
  std::vector<int64_t> limits;
  for (size_t k = 0; k < scale.size(); ++k) {
    const int64_t budget = limits::kMaxElements / scale[k];
    int64_t limit = budget;
    if (degree[k] > 1) {  // the largest x with x^degree <= budget
      limit = static_cast<int64_t>(std::pow(static_cast<double>(budget), 1.0 / degree[k]));
      auto fits = [&](int64_t x) {
        int64_t p = 1;
        for (int64_t i = 0; i < degree[k]; ++i)
          if (__builtin_mul_overflow(p, x, &p) || p > budget) return false;
        return true;
      };
      while (limit > 1 && !fits(limit)) --limit;
      while (fits(limit + 1)) ++limit;
    }
    limits.push_back(limit);
  }
  // A slice of a constant dim with a symbolic end (cos.narrow(0, 0, x.size(1))) bounds its
  // symbol: the end may not pass the dim.
  for (const Node& node : g.nodes) {
    if (node.op != Op::slice) continue;
    const Dim end = node.attrs.get_dim("end");
    const SymShape& in = g.value_type(node.inputs[0]).shape;
    const int64_t d =
        normalize_dim(node.attrs.get_int("dim"), static_cast<int64_t>(in.size()), "slice");
    if (end.is_const() || end.coeff < 1 || end.sym >= g.num_symbols ||
        !in[static_cast<size_t>(d)].is_const())
      continue;
    int64_t& limit = limits[static_cast<size_t>(end.sym)];
    limit = std::min(limit, in[static_cast<size_t>(d)].coeff / end.coeff);
  }
  return limits;
}

std::vector<int64_t> bind_inputs(const Graph& g, const std::vector<Tensor>& inputs,
                                 const std::vector<int64_t>* limits) {
  if (inputs.size() != g.inputs.size())
    throw Error(
        fmt::format("graph {} takes {} inputs, got {}", g.name, g.inputs.size(), inputs.size()));
  std::vector<int64_t> bindings(static_cast<size_t>(g.num_symbols), -1);
  for (size_t i = 0; i < inputs.size(); ++i) {
    const GraphInput& decl = g.inputs[i];
    const Tensor& t = inputs[i];
    auto mismatch = [&](const std::string& what) {
      return Error(fmt::format("graph {}: input %{} must be {}, got {}{} ({})", g.name, decl.name,
                               type_string(decl.type), dtype_name(t.dtype()),
                               shape_string(t.sizes()), what));
    };
    if (!t.defined())
      throw Error(fmt::format("graph {}: input %{} is undefined", g.name, decl.name));
    require_data(t, "graph input");
    if (t.dtype() != decl.type.dtype) throw mismatch("wrong dtype");
    if (t.dim() != static_cast<int64_t>(decl.type.shape.size())) throw mismatch("wrong rank");
    for (size_t d = 0; d < decl.type.shape.size(); ++d) {
      const Dim& dim = decl.type.shape[d];
      int64_t size = t.sizes()[d];
      if (dim.is_const()) {
        if (dim.coeff != size) throw mismatch(fmt::format("dim {} differs", d));
        continue;
      }
      if (dim.coeff < 1 || size % dim.coeff != 0)
        throw mismatch(fmt::format("dim {} is not a multiple", d));
      int64_t& bound = bindings[static_cast<size_t>(dim.sym)];
      if (bound >= 0 && bound != size / dim.coeff)
        throw mismatch(fmt::format("s{} is {} elsewhere", dim.sym, bound));
      bound = size / dim.coeff;
    }
  }
  std::vector<int64_t> computed;
  if (!limits) limits = &(computed = symbol_limits(g));
  for (size_t s = 0; s < bindings.size(); ++s) {
    if (bindings[s] < 0)
      throw ShapeError(
          fmt::format("graph {}: size symbol s{} is not bound by any input", g.name, s));
    if (s < limits->size() && bindings[s] > (*limits)[s])
      throw ShapeError(fmt::format(
          "graph {}: size symbol s{} = {} is past its limit: s{} may be at most {}, so that no "
          "value of the graph has more than {} elements (kiln's limit for one tensor) and no "
          "slice it bounds passes its dim",
          g.name, s, bindings[s], s, (*limits)[s], limits::kMaxElements));
  }
  return bindings;
}

Attrs bind_attrs(const Attrs& attrs, const std::vector<int64_t>& bindings) {
  Attrs out = attrs;
  for (const auto& [name, value] : attrs.items()) {
    const auto* dims = std::get_if<std::vector<Dim>>(&value);
    if (!dims) continue;
    std::vector<Dim> bound;
    for (const Dim& d : *dims) bound.push_back(Dim::constant(d.eval(bindings)));
    out.set(name, std::move(bound));
  }
  return out;
}

namespace {

bool has_symbolic_attr(const Attrs& attrs) {
  for (const auto& [name, value] : attrs.items())
    if (const auto* dims = std::get_if<std::vector<Dim>>(&value))
      for (const Dim& d : *dims)
        if (!d.is_const()) return true;
  return false;
}

}  // namespace

Tensor run_node(const Node& node, const std::vector<Tensor>& args,
                const std::vector<int64_t>& bindings) {
  if (has_symbolic_attr(node.attrs)) return run_op(node.op, args, bind_attrs(node.attrs, bindings));
  return run_op(node.op, args, node.attrs);
}

Tensor owned_output(const Graph& g, const Tensor& value, const std::vector<Tensor>& inputs) {
  bool aliases = !value.is_contiguous();
  for (const Tensor& in : inputs) aliases |= in.impl()->storage == value.impl()->storage;
  for (const GraphConstant& c : g.constants)
    aliases |= c.value.impl()->storage == value.impl()->storage;
  return aliases ? value.clone() : value;
}

std::vector<Tensor> interpret(const Graph& g, const std::vector<Tensor>& inputs) {
  std::vector<int64_t> bindings = bind_inputs(g, inputs);
  const size_t n_values = static_cast<size_t>(g.num_values());
  // Free each intermediate after its last reader.
  std::vector<int64_t> last_use(n_values, -1);
  for (size_t n = 0; n < g.nodes.size(); ++n)
    for (ValueId v : g.nodes[n].inputs) last_use[v] = static_cast<int64_t>(n);
  for (ValueId v : g.outputs) last_use[v] = static_cast<int64_t>(g.nodes.size());

  std::vector<Tensor> values(n_values);
  for (size_t i = 0; i < inputs.size(); ++i) values[i] = inputs[i];
  for (size_t c = 0; c < g.constants.size(); ++c) {
    if (!g.constants[c].value.defined())
      throw Error(fmt::format("graph {}: constant %{} has no value (load its constants file)",
                              g.name, g.constants[c].name));
    values[g.inputs.size() + c] = g.constants[c].value;
  }
  std::vector<Tensor> args;
  for (size_t n = 0; n < g.nodes.size(); ++n) {
    const Node& node = g.nodes[n];
    args.clear();
    for (ValueId v : node.inputs) args.push_back(values[v]);
    values[g.node_value(n)] = run_node(node, args, bindings);
    for (ValueId v : node.inputs)
      if (last_use[v] == static_cast<int64_t>(n) && g.node_index(v) >= 0) values[v] = Tensor();
  }
  std::vector<Tensor> outputs;
  for (ValueId v : g.outputs) outputs.push_back(owned_output(g, values[v], inputs));
  return outputs;
}

}  // namespace kiln
