#include "runtime/plan.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "graph/text.h"
#include "graph/verify.h"
#include "kiln/error.h"
#include "support/json_number.h"

namespace kiln {

using nlohmann::json;

std::string plan_to_json(const CompiledPlan& plan) {
  json j;
  j["format"] = 1;
  j["graph"] = print_graph(plan.graph);
  j["options"] = plan.options;
  j["device"] = device_name(plan.device);
  j["units"] = json::array();
  for (const ObjectUnit& u : plan.units)
    j["units"].push_back(
        {{"name", u.name}, {"key", u.key}, {"source", u.source}, {"light", u.light}});
  auto work_json = [](const SymShape& work) {
    json dims = json::array();
    for (const Dim& d : work) dims.push_back({d.coeff, d.sym});
    return dims;
  };
  j["kernels"] = json::array();
  for (const KernelLaunch& k : plan.kernels)
    j["kernels"].push_back({{"name", k.name},
                            {"kind", k.kind},
                            {"symbol", k.symbol},
                            {"unit", k.unit},
                            {"light", k.light},
                            {"params", k.params},
                            {"outputs", k.outputs},
                            {"elementwise", k.elementwise},
                            {"part_params", k.part_params},
                            {"read_at_constant_index", k.read_at_constant_index},
                            {"source", k.source},
                            {"space", space_text(k.space)},
                            {"config", config_text(k.config)},
                            {"tuning", k.tuning},
                            {"work", work_json(k.work)},
                            {"row_per_block", k.row_per_block},
                            {"columns_per_block", k.columns_per_block},
                            {"threads", k.threads},
                            {"split", k.split},
                            {"phases", k.phases},
                            {"reduced_work", work_json(k.reduced_work)}});
  j["steps"] = json::array();
  for (const PlanStep& s : plan.steps)
    j["steps"].push_back(s.kind == PlanStep::Kind::Kernel ? json{{"kernel", s.kernel}}
                                                          : json{{"ext", s.node}});
  std::vector<int> read(plan.read_by_kernel.begin(), plan.read_by_kernel.end());
  j["read_by_kernel"] = read;
  return j.dump();
}

TensorMap new_constants(const CompiledPlan& plan, const TensorMap& given) {
  TensorMap made;
  for (const GraphConstant& c : plan.graph.constants)
    if (!given.count(c.name)) made[c.name] = c.value;
  return made;
}

namespace {

bool is_tuning_word(const std::string& s) {
  return s == "default" || s == "benchmarked" || s == "lookup_table" || s == "cached";
}

bool is_symbol(const std::string& s) {
  if (s.empty() || s.size() > 200 || std::isdigit(static_cast<unsigned char>(s[0]))) return false;
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) return false;
  return true;
}

CompiledPlan parse_plan(const json& j, const TensorMap& given, const TensorMap& made,
                        const std::string& source) {
  auto fail = [&](const std::string& why) {
    return FormatError(fmt::format("{}: invalid plan: {}", source, why));
  };
  if (!j.is_object() || j.value("format", 0) != 1) throw fail("not a kiln plan of format 1");
  TensorMap constants = given;
  for (const auto& [name, t] : made)
    if (!constants.emplace(name, t).second)
      throw fail(fmt::format("constant {} given twice", name));
  CompiledPlan plan;
  plan.graph = parse_graph(j.at("graph").get<std::string>(), source + " (graph)", &constants);
  verify_graph(plan.graph);
  plan.options = j.at("options").get<std::string>();
  const std::string device = j.at("device").get<std::string>();
  if (device != "cpu" && device != "cuda") throw fail(fmt::format("unknown device '{}'", device));
  plan.device = device == "cuda" ? Device::cuda : Device::cpu;
  for (const GraphConstant& c : plan.graph.constants)
    if (!c.value.defined()) throw fail(fmt::format("no value for constant {}", c.name));
  const int32_t num_values = plan.graph.num_values();
  for (const json& u : j.at("units")) {
    ObjectUnit unit{u.at("name").get<std::string>(), u.at("key").get<std::string>(),
                    u.at("source").get<std::string>(), plan.device, u.at("light").get<bool>()};
    if (!is_symbol(unit.name)) throw fail("a unit with a bad name");
    plan.units.push_back(std::move(unit));
  }
  auto value_id = [&](const json& v) {
    auto id = json_integer<int64_t>(v);
    if (id < 0 || id >= num_values) throw fail(fmt::format("value %{} out of range", id));
    return static_cast<ValueId>(id);
  };
  for (const json& k : j.at("kernels")) {
    KernelLaunch launch;
    launch.name = k.at("name").get<std::string>();
    if (!is_symbol(launch.name)) throw fail("a kernel with a bad name");
    launch.kind = k.at("kind").get<std::string>();
    if (launch.kind != "poi" && launch.kind != "red" && launch.kind != "per" &&
        launch.kind != "for" && launch.kind != "tem")
      throw fail(fmt::format("kernel {} of unknown kind '{}'", launch.name, launch.kind));
    launch.symbol = k.at("symbol").get<std::string>();
    if (!is_symbol(launch.symbol))
      throw fail(fmt::format("kernel {} has a bad symbol", launch.name));
    launch.light = k.at("light").get<bool>();
    launch.unit = json_integer<int>(k.at("unit"));
    if (launch.unit < 0 || launch.unit >= static_cast<int>(plan.units.size()))
      throw fail("a kernel in no unit");
    for (const json& v : k.at("params")) launch.params.push_back(value_id(v));
    for (const json& v : k.at("outputs")) {
      ValueId out = value_id(v);
      if (plan.graph.node_index(out) < 0)
        throw fail(fmt::format("kernel {} writes an input or constant", launch.name));
      if (std::find(launch.params.begin(), launch.params.end(), out) == launch.params.end())
        throw fail(fmt::format("kernel {} writes a value that is not its param", launch.name));
      launch.outputs.push_back(out);
    }
    launch.elementwise = k.at("elementwise").get<bool>();
    int64_t part_total = 0;
    for (const json& n : k.at("part_params")) {
      launch.part_params.push_back(json_integer<int>(n));
      if (launch.part_params.back() <= 0)
        throw fail(fmt::format("kernel {} has an empty part", launch.name));
      part_total += launch.part_params.back();
    }
    for (const json& v : k.at("read_at_constant_index")) {
      ValueId read = value_id(v);
      if (std::find(launch.params.begin(), launch.params.end(), read) == launch.params.end())
        throw fail(fmt::format("kernel {} reads a value that is not its param", launch.name));
      launch.read_at_constant_index.push_back(read);
    }
    if (!launch.part_params.empty() && part_total != static_cast<int64_t>(launch.params.size()))
      throw fail(fmt::format("kernel {}'s parts have {} params, not its {}", launch.name,
                             part_total, launch.params.size()));
    launch.source = k.at("source").get<std::string>();
    std::string where = fmt::format("{} (kernel {})", source, launch.name);
    launch.space = parse_space(k.at("space").get<std::string>(), where);
    launch.config = parse_config(k.at("config").get<std::string>(), where);
    if (launch.space.complete(launch.config) != launch.config ||
        !launch.space.admits(launch.config))
      throw fail(fmt::format("kernel {}'s config {} does not fit its tuning space", launch.name,
                             config_text(launch.config)));
    launch.tuning = k.at("tuning").get<std::string>();
    if (!is_tuning_word(launch.tuning))
      throw fail(fmt::format("kernel {}: unknown tuning '{}'", launch.name, launch.tuning));
    auto dims = [&](const json& list) {
      SymShape out;
      for (const json& d : list) {
        Dim dim{json_integer<int64_t>(d.at(0)), json_integer<int32_t>(d.at(1))};
        if (dim.sym >= plan.graph.num_symbols || dim.sym < -1 || dim.coeff < 0)
          throw fail(fmt::format("kernel {}: a bad work dim", launch.name));
        out.push_back(dim);
      }
      return out;
    };
    launch.work = dims(k.at("work"));
    launch.reduced_work = dims(k.at("reduced_work"));
    launch.split = k.at("split").get<bool>();
    launch.phases = json_integer<int>(k.at("phases"));
    if (launch.phases < 0 || launch.phases > 64)
      throw fail(fmt::format("kernel {}: {} phases", launch.name, launch.phases));
    launch.row_per_block = k.at("row_per_block").get<bool>();
    launch.columns_per_block = json_integer<int>(k.at("columns_per_block"));
    if (launch.columns_per_block != 0 && launch.columns_per_block != 32)
      throw fail(
          fmt::format("kernel {}: {} columns per block", launch.name, launch.columns_per_block));
    launch.threads = json_integer<int>(k.at("threads"));
    if (launch.threads < 32 || launch.threads > 1024 || launch.threads % 32 != 0)
      throw fail(fmt::format("kernel {}: {} threads per block", launch.name, launch.threads));
    plan.kernels.push_back(std::move(launch));
  }
  // Steps in order: nothing is read before it was written.
  std::vector<bool> defined(static_cast<size_t>(num_values), false);
  for (size_t i = 0; i < plan.graph.inputs.size() + plan.graph.constants.size(); ++i)
    defined[i] = true;
  for (const json& s : j.at("steps")) {
    PlanStep step;
    std::vector<ValueId> reads, writes;
    if (s.contains("kernel")) {
      step.kind = PlanStep::Kind::Kernel;
      step.kernel = json_integer<int>(s.at("kernel"));
      if (step.kernel < 0 || step.kernel >= static_cast<int>(plan.kernels.size()))
        throw fail("a step of no kernel");
      const KernelLaunch& k = plan.kernels[static_cast<size_t>(step.kernel)];
      writes = k.outputs;
      for (ValueId p : k.params)
        if (std::find(writes.begin(), writes.end(), p) == writes.end()) reads.push_back(p);
    } else {
      step.kind = PlanStep::Kind::Ext;
      step.node = json_integer<int>(s.at("ext"));
      if (step.node < 0 || step.node >= static_cast<int>(plan.graph.nodes.size()))
        throw fail("a step of no node");
      reads = plan.graph.nodes[static_cast<size_t>(step.node)].inputs;
      writes = {plan.graph.node_value(static_cast<size_t>(step.node))};
    }
    for (ValueId v : reads)
      if (!defined[v]) throw fail(fmt::format("value %{} is read before it is written", v));
    for (ValueId v : writes) defined[v] = true;
    plan.steps.push_back(step);
  }
  for (ValueId v : plan.graph.outputs)
    if (!defined[v]) throw fail(fmt::format("output %{} is never written", v));
  for (const json& r : j.at("read_by_kernel"))
    plan.read_by_kernel.push_back(json_integer<int>(r) != 0);
  if (plan.read_by_kernel.size() != static_cast<size_t>(num_values))
    throw fail("read_by_kernel has the wrong length");
  return plan;
}

}  // namespace

CompiledPlan plan_from_json(std::string_view text, const TensorMap& given, const TensorMap& made,
                            const std::string& source) {
  try {
    return parse_plan(json::parse(text), given, made, source);
  } catch (const json::exception& e) {
    throw FormatError(fmt::format("{}: invalid plan: {}", source, e.what()));
  } catch (const FormatError&) {
    throw;
  } catch (const Error& e) {
    throw FormatError(fmt::format("{}: invalid plan: {}", source, e.what()));
  }
}

}  // namespace kiln
