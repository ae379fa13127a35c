#include "graph/verify.h"

#include <fmt/format.h>

#include <cctype>
#include <set>

#include "kiln/error.h"
#include "support/limits.h"

namespace kiln {

namespace {
void check_name(const std::string& name, std::set<std::string>& seen, const Graph& g) {
  bool ok = !name.empty() && !std::isdigit(static_cast<unsigned char>(name[0]));
  for (char c : name) ok &= std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.';
  if (!ok)
    throw Error(
        fmt::format("graph {}: bad value name '%{}' (letters, digits, '_' and '.', not "
                    "starting with a digit)",
                    g.name, name));
  if (!seen.insert(name).second)
    throw Error(fmt::format("graph {}: value name '%{}' is used twice", g.name, name));
}

// Throws unless the graph's counts are within kiln's limits (support/limits.h).
void check_counts(const Graph& g) {
  auto check = [&](size_t count, int64_t limit, const char* what) {
    if (static_cast<int64_t>(count) > limit)
      throw Error(fmt::format("graph {}: {} {}; kiln's limit is {}", g.name, count, what, limit));
  };
  check(g.nodes.size(), limits::kMaxNodes, "nodes");
  check(g.inputs.size(), limits::kMaxGraphInputs, "inputs");
  check(g.outputs.size(), limits::kMaxGraphOutputs, "outputs");
}

// Every size symbol is bound by an input's shape (nothing else gives it a value at run time).
void check_symbols_bound(const Graph& g) {
  std::vector<bool> bound(static_cast<size_t>(std::max(g.num_symbols, 0)), false);
  for (const GraphInput& in : g.inputs)
    for (const Dim& d : in.type.shape)
      if (!d.is_const() && d.sym < g.num_symbols) bound[static_cast<size_t>(d.sym)] = true;
  auto check = [&](const Dim& d, const std::string& where) {
    if (d.is_const()) return;
    if (d.sym >= g.num_symbols || !bound[static_cast<size_t>(d.sym)])
      throw Error(fmt::format("graph {}: {} uses size symbol s{}, which no input's shape binds",
                              g.name, where, d.sym));
  };
  for (size_t n = 0; n < g.nodes.size(); ++n) {
    const Node& node = g.nodes[n];
    const std::string where = fmt::format("node %{} ({})", n, op_name(node.op));
    for (const Dim& d : node.type.shape) check(d, where);
    for (const auto& [name, value] : node.attrs.items())
      if (const auto* dims = std::get_if<std::vector<Dim>>(&value))
        for (const Dim& d : *dims) check(d, where + " attribute " + name);
  }
  for (const GraphConstant& c : g.constants)
    for (const Dim& d : c.type.shape) check(d, "constant %" + c.name);
}

}  // namespace

void verify_graph(const Graph& g) {
  check_counts(g);
  std::set<std::string> names;
  for (const GraphInput& in : g.inputs) {
    check_name(in.name, names, g);
    check_shape_limits(in.type.shape, fmt::format("graph {}: input %{}", g.name, in.name));
  }
  check_symbols_bound(g);
  for (const GraphConstant& c : g.constants) {
    check_name(c.name, names, g);
    check_shape_limits(c.type.shape, fmt::format("graph {}: constant %{}", g.name, c.name));
    if (c.value.defined() &&
        (c.value.dtype() != c.type.dtype || !(const_shape(c.value.sizes()) == c.type.shape)))
      throw Error(fmt::format("graph {}: constant %{} is declared {} but holds a {}{} tensor",
                              g.name, c.name, type_string(c.type), dtype_name(c.value.dtype()),
                              shape_string(c.value.sizes())));
  }
  for (size_t n = 0; n < g.nodes.size(); ++n) {
    const Node& node = g.nodes[n];
    ValueId self = g.node_value(n);
    std::vector<const TensorType*> types;
    for (ValueId v : node.inputs) {
      if (v < 0 || v >= self)
        throw Error(
            fmt::format("graph {}: node %{} ({}) reads value {} that is not defined "
                        "before it",
                        g.name, n, op_name(node.op), v));
      types.push_back(&g.value_type(v));
    }
    TensorType inferred = infer_type(node.op, node.attrs, types);
    if (!(inferred == node.type))
      throw Error(fmt::format("graph {}: node %{} ({}) is typed {} but its inputs give {}", g.name,
                              n, op_name(node.op), type_string(node.type), type_string(inferred)));
  }
  if (g.outputs.empty()) throw Error(fmt::format("graph {}: has no outputs", g.name));
  for (ValueId v : g.outputs) g.value_type(v);
}

}  // namespace kiln
