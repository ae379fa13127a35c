// A plan as bytes, with the constants it made: the form a compile worker answers a
// compile_graph job in, and the payload of a graph cache entry (graphs/KEY.graph). The
// constants the graph already had (`given`) stay out: the reader has them.
#pragma once

#include <string>

#include "runtime/plan.h"
#include "worker/jobs.h"

namespace kiln {

TensorMap constants_of(const Graph& graph);
PlanReply plan_reply_of(const CompiledPlan& plan, const TensorMap& given);
// Validates and parses; `source` names where the bytes came from in errors.
CompiledPlan plan_of(const PlanReply& reply, const TensorMap& given, const std::string& source);

// The compile_graph job of `graph` for `spec`.
CompileGraphJob plan_job(const Graph& graph, const ToolchainSpec& spec);

}  // namespace kiln
