// libFuzzer target: the graph text parser, the verifier and the interpreter. Any input
// either parses or raises kiln::Error; what parses must verify, print, and parse back to
// the same text; and, when its values are tiny (size symbols bound to 2), run on the eager
// interpreter, which either answers or raises kiln::Error (never crashes or hangs).
#include <cstdint>
#include <cstdlib>
#include <string>

#include "eager/interpreter.h"
#include "graph/text.h"
#include "graph/verify.h"
#include "kiln/error.h"
#include "observe/repro.h"

namespace {

// Every value's element count with every symbol at 2, or -1 past `limit`.
bool tiny(const kiln::Graph& g, const std::vector<int64_t>& bindings, int64_t limit) {
  auto small = [&](const kiln::TensorType& t) {
    int64_t n = 1;
    for (const kiln::Dim& d : t.shape) {
      n *= d.eval(bindings);
      if (n > limit) return false;
    }
    return true;
  };
  for (const kiln::GraphInput& in : g.inputs)
    if (!small(in.type)) return false;
  for (const kiln::Node& node : g.nodes)
    if (!small(node.type)) return false;
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  kiln::Graph graph;
  try {
    graph = kiln::parse_graph(text, "fuzz");
  } catch (const kiln::Error&) {
    return 0;
  }
  kiln::verify_graph(graph);
  std::string printed = kiln::print_graph(graph);
  if (kiln::print_graph(kiln::parse_graph(printed, "reprinted")) != printed) std::abort();
  if (!graph.constants.empty()) return 0;  // parsed without their tensors
  const std::vector<int64_t> bindings(static_cast<size_t>(graph.num_symbols), 2);
  try {
    if (!tiny(graph, bindings, 4096)) return 0;
    std::vector<kiln::Tensor> inputs;
    for (const kiln::GraphInput& in : graph.inputs) {
      kiln::Shape shape;
      for (const kiln::Dim& d : in.type.shape) shape.push_back(d.eval(bindings));
      inputs.push_back(kiln::random_tensor(in.type.dtype, shape));
    }
    kiln::interpret(graph, inputs);
  } catch (const kiln::Error&) {
  }
  return 0;
}
