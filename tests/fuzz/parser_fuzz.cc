// libFuzzer target: the graph text parser. Any input either parses or raises kiln::Error;
// what parses must verify, print, and parse back to the same text.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "graph/text.h"
#include "graph/verify.h"
#include "kiln/error.h"

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
  return 0;
}
