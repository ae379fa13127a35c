#include "observe/minifier.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>

#include "kiln/error.h"

namespace kiln {

const char* repro_failure_name(ReproFailure failure) {
  switch (failure) {
    case ReproFailure::none:
      return "passes";
    case ReproFailure::mismatch:
      return "accuracy mismatch";
    case ReproFailure::error:
      return "error";
    case ReproFailure::crash:
      return "crash";
  }
  return "?";
}

Repro sub_repro(const Repro& r, const std::vector<size_t>& keep) {
  const Graph& g = r.graph;
  GraphBuilder b(g.name);
  b.use_symbols(g.num_symbols);
  std::map<ValueId, ValueId> mapped;
  std::vector<bool> kept(g.nodes.size(), false);
  for (size_t n : keep) kept.at(n) = true;
  Repro out = r;
  out.strides.clear();
  out.saved_inputs.clear();
  auto value_of = [&](ValueId v) {
    if (auto it = mapped.find(v); it != mapped.end()) return it->second;
    ValueId id;
    if (static_cast<size_t>(v) < g.inputs.size()) {
      const GraphInput& in = g.inputs[static_cast<size_t>(v)];
      id = b.add_input(in.name, in.type);
      if (auto s = r.strides.find(in.name); s != r.strides.end()) out.strides.insert(*s);
      if (auto t = r.saved_inputs.find(in.name); t != r.saved_inputs.end())
        out.saved_inputs.insert(*t);
    } else if (g.node_index(v) < 0) {
      const GraphConstant& c = g.constants[static_cast<size_t>(v) - g.inputs.size()];
      id = b.add_constant(c.name, c.type, c.value);
    } else {
      id = b.add_input(fmt::format("cut{}", v), g.value_type(v));  // a dropped node's value
    }
    mapped[v] = id;
    return id;
  };
  std::vector<bool> read(static_cast<size_t>(g.num_values()), false);
  for (size_t n : keep) {
    const Node& node = g.nodes[n];
    std::vector<ValueId> inputs;
    for (ValueId v : node.inputs) {
      inputs.push_back(value_of(v));
      read[static_cast<size_t>(v)] = true;
    }
    mapped[g.node_value(n)] = b.add_node(node.op, inputs, node.attrs);
  }
  std::vector<ValueId> outputs;
  for (size_t n : keep) {
    ValueId v = g.node_value(n);
    if (!read[static_cast<size_t>(v)] ||
        std::find(g.outputs.begin(), g.outputs.end(), v) != g.outputs.end())
      outputs.push_back(mapped[v]);
  }
  b.set_outputs(outputs);
  out.graph = b.finish();
  return out;
}

MinifyResult minify(const Repro& failing, const std::function<ReproFailure(const Repro&)>& run,
                    const std::function<void(const std::string&)>& progress) {
  MinifyResult result;
  result.failure = run(failing);
  result.tried = 1;
  if (result.failure == ReproFailure::none)
    throw Error("minify: the repro does not fail; nothing to minimize");
  progress(fmt::format("{} nodes fail with: {}", failing.graph.nodes.size(),
                       repro_failure_name(result.failure)));
  std::vector<size_t> current(failing.graph.nodes.size());
  for (size_t i = 0; i < current.size(); ++i) current[i] = i;
  result.minimal = failing;
  // Whether the nodes `keep` still fail the same way (a candidate that cannot be built,
  // or fails another way, does not count).
  auto still_fails = [&](const std::vector<size_t>& keep) {
    if (keep.empty()) return false;
    Repro candidate;
    try {
      candidate = sub_repro(failing, keep);
    } catch (const std::exception&) {
      return false;
    }
    ++result.tried;
    if (run(candidate) != result.failure) return false;
    result.minimal = std::move(candidate);
    progress(fmt::format("{} nodes still fail", keep.size()));
    return true;
  };
  size_t granularity = 2;
  while (current.size() >= 2) {
    const size_t chunk = (current.size() + granularity - 1) / granularity;
    std::vector<std::vector<size_t>> parts;
    for (size_t at = 0; at < current.size(); at += chunk)
      parts.emplace_back(
          current.begin() + static_cast<std::ptrdiff_t>(at),
          current.begin() + static_cast<std::ptrdiff_t>(std::min(current.size(), at + chunk)));
    bool reduced = false;
    for (const std::vector<size_t>& part : parts) {
      if (still_fails(part)) {
        current = part;
        granularity = 2;
        reduced = true;
        break;
      }
    }
    if (!reduced && parts.size() > 2) {
      for (size_t p = 0; p < parts.size() && !reduced; ++p) {
        std::vector<size_t> complement;
        for (size_t q = 0; q < parts.size(); ++q)
          if (q != p) complement.insert(complement.end(), parts[q].begin(), parts[q].end());
        if (still_fails(complement)) {
          current = complement;
          granularity = std::max<size_t>(granularity - 1, 2);
          reduced = true;
        }
      }
    }
    if (reduced) continue;
    if (granularity >= current.size()) break;
    granularity = std::min(current.size(), granularity * 2);
  }
  return result;
}

}  // namespace kiln
