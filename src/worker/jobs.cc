#include "worker/jobs.h"

#include <fmt/format.h>

namespace kiln {

namespace {

const std::string& field(const Fields& fields, std::string_view name, std::string_view message) {
  auto it = fields.find(name);
  if (it == fields.end()) throw WireError(fmt::format("{} without its '{}' field", message, name));
  return it->second;
}

void put_toolchain(Fields& fields, const ToolchainSpec& spec) {
  fields["device"] = std::string(device_name(spec.device));
  fields["tier"] = tier_name(spec.tier);
  fields["compiler"] = spec.compiler;
  fields["arch"] = spec.arch;
}

ToolchainSpec take_toolchain(const Fields& fields, std::string_view message) {
  ToolchainSpec spec;
  const std::string& device = field(fields, "device", message);
  if (device == "cuda")
    spec.device = Device::cuda;
  else if (device != "cpu")
    throw WireError(fmt::format("{}: unknown device '{}'", message, device));
  const std::string& tier = field(fields, "tier", message);
  if (tier == "fast")
    spec.tier = Tier::fast;
  else if (tier == "light")
    spec.tier = Tier::light;
  else if (tier != "optimized")
    throw WireError(fmt::format("{}: unknown tier '{}'", message, tier));
  spec.compiler = field(fields, "compiler", message);
  if (spec.compiler != "gcc" && spec.compiler != "clang")
    throw WireError(fmt::format("{}: unknown compiler '{}'", message, spec.compiler));
  spec.arch = field(fields, "arch", message);
  if (spec.device == Device::cuda && spec.arch.empty())
    throw WireError(fmt::format("{}: a cuda job without its GPU architecture", message));
  return spec;
}

}  // namespace

const char* tier_name(Tier tier) {
  switch (tier) {
    case Tier::light:
      return "light";
    case Tier::fast:
      return "fast";
    case Tier::optimized:
      break;
  }
  return "optimized";
}

Toolchain toolchain_of(const ToolchainSpec& spec) {
  return spec.device == Device::cuda ? cuda_toolchain(spec.arch)
                                     : toolchain_for(spec.tier, spec.compiler);
}

Job encode(const CompileGraphJob& job) {
  Fields fields{{"graph", job.graph_text}, {"constants", job.constants}};
  put_toolchain(fields, job.toolchain);
  return Job{MessageType::compile_graph, std::move(fields),
             fmt::format("compile_graph {}", job.graph_name), default_job_timeout()};
}

Fields encode(const PlanReply& reply) {
  return {{"plan", reply.plan}, {"constants", reply.constants}};
}

Job encode(const CompileUnitJob& job) {
  Fields fields{{"name", job.name}, {"source", job.source}, {"cache_dir", job.cache_dir}};
  put_toolchain(fields, job.toolchain);
  return Job{MessageType::compile_unit, std::move(fields), fmt::format("compile_unit {}", job.name),
             default_job_timeout()};
}

Fields encode(const UnitReply& reply) {
  return Fields{{"key", reply.key}, {"object", reply.object}};
}

CompileGraphJob decode_compile_graph_job(const Fields& fields) {
  constexpr std::string_view kWhat = "compile_graph job";
  return {"", field(fields, "graph", kWhat), field(fields, "constants", kWhat),
          take_toolchain(fields, kWhat)};
}

PlanReply decode_plan_reply(const Fields& fields) {
  constexpr std::string_view kWhat = "compile worker's plan reply";
  return {field(fields, "plan", kWhat), field(fields, "constants", kWhat)};
}

CompileUnitJob decode_compile_unit_job(const Fields& fields) {
  constexpr std::string_view kWhat = "compile_unit job";
  return {field(fields, "name", kWhat), field(fields, "source", kWhat),
          take_toolchain(fields, kWhat), field(fields, "cache_dir", kWhat)};
}

UnitReply decode_unit_reply(const Fields& fields) {
  constexpr std::string_view kWhat = "compile worker's unit reply";
  return {field(fields, "key", kWhat), field(fields, "object", kWhat)};
}

}  // namespace kiln
