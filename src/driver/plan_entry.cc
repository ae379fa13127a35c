#include "driver/plan_entry.h"

#include "graph/text.h"
#include "kiln/safetensors.h"

namespace kiln {

TensorMap constants_of(const Graph& graph) {
  TensorMap given;
  for (const GraphConstant& c : graph.constants) given[c.name] = c.value;
  return given;
}

PlanReply plan_reply_of(const CompiledPlan& plan, const TensorMap& given) {
  return {plan_to_json(plan), serialize_safetensors(new_constants(plan, given))};
}

CompiledPlan plan_of(const PlanReply& reply, const TensorMap& given, const std::string& source) {
  TensorMap made = parse_safetensors(reinterpret_cast<const uint8_t*>(reply.constants.data()),
                                     reply.constants.size(), source + " (constants)");
  return plan_from_json(reply.plan, given, made, source);
}

CompileGraphJob plan_job(const Graph& graph, const ToolchainSpec& spec) {
  return {graph.name, print_graph(graph), serialize_safetensors(constants_of(graph)), spec};
}

}  // namespace kiln
