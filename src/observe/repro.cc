#include "observe/repro.h"

#include <fmt/format.h>

#include <unistd.h>
#include <optional>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "graph/text.h"
#include "kiln/error.h"
#include "kiln/ops.h"
#include "support/files.h"
#include "support/json_number.h"
#include "support/limits.h"
#include "support/text.h"
#include "tensor/tensor_impl.h"

namespace kiln {

namespace {

constexpr const char* kFormat = "kiln-repro 1";
constexpr int64_t kMaxElements = int64_t{1} << 34;

std::string safe_name(const std::string& name) {
  std::string out;
  for (char c : name)
    out += (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-') ? c : '_';
  return out.empty() ? "graph" : out.substr(0, 64);
}

Shape shape_of(const TensorType& type, const std::vector<int64_t>& bindings) {
  Shape shape;
  for (const Dim& d : type.shape) shape.push_back(d.eval(bindings));
  return shape;
}

const GraphInput* find_input(const Graph& graph, const std::string& name) {
  for (const GraphInput& in : graph.inputs)
    if (in.name == name) return &in;
  return nullptr;
}

}  // namespace

Tensor random_tensor(DType dtype, const Shape& shape) {
  switch (dtype) {
    case DType::bool_:
      return rand(shape) > 0.5;
    case DType::i32:
    case DType::i64:
      return floor(rand(shape) * 100.0 - 50.0).to(dtype);
    default:
      return randn(shape, dtype);
  }
}

Repro repro_of_call(const Graph& graph, const std::vector<Tensor>& inputs,
                    const ResolvedOptions& options, bool save_inputs) {
  Repro r;
  r.graph = graph;
  r.bindings = graph.size_hints;
  r.bindings.resize(static_cast<size_t>(graph.num_symbols), 1);
  for (size_t i = 0; i < inputs.size() && i < graph.inputs.size(); ++i) {
    if (!inputs[i].is_contiguous()) r.strides[graph.inputs[i].name] = inputs[i].strides();
    if (save_inputs) r.saved_inputs[graph.inputs[i].name] = inputs[i].contiguous();
  }
  r.recorded_mode = std::string(compile_mode_name(options.mode));
  const bool background =
      options.mode != CompileMode::InProcess && options.mode != CompileMode::Subprocess;
  r.mode = background ? CompileMode::Subprocess : options.mode;
  r.autotune = options.autotune.value_or(background && options.mode != CompileMode::Async);
  r.max_autotune = options.max_autotune;
  r.coordinate_descent = options.coordinate_descent;
  return r;
}

std::string write_repro(const std::string& dir, const Repro& r) {
  static std::atomic<int> counter{0};
  const std::string base =
      fmt::format("graph_runnable_{}_{}_{}", safe_name(r.graph.name), getpid(), counter++);
  const std::string prefix = dir + "/" + base;
  nlohmann::json j;
  j["format"] = kFormat;
  j["graph"] = print_graph(r.graph);
  TensorMap constants;
  for (const GraphConstant& c : r.graph.constants) constants[c.name] = c.value;
  j["constants"] = constants.empty() ? "" : base + ".constants.safetensors";
  if (!constants.empty())
    write_file_atomically(prefix + ".constants.safetensors", serialize_safetensors(constants));
  j["saved_inputs"] = r.saved_inputs.empty() ? "" : base + ".inputs.safetensors";
  if (!r.saved_inputs.empty())
    write_file_atomically(prefix + ".inputs.safetensors", serialize_safetensors(r.saved_inputs));
  j["bindings"] = r.bindings;
  j["strides"] = nlohmann::json::object();
  for (const auto& [name, strides] : r.strides) j["strides"][name] = strides;
  j["recorded_mode"] = r.recorded_mode;
  j["replay"] = {{"mode", compile_mode_name(r.mode)},
                 {"autotune", r.autotune},
                 {"max_autotune", r.max_autotune},
                 {"coordinate_descent", r.coordinate_descent}};
  j["seed"] = r.seed;
  write_file_atomically(prefix + ".json", j.dump(2) + "\n");
  return prefix + ".json";
}

Repro read_repro(const std::string& path) {
  auto fail = [&](const std::string& why) {
    return FormatError(fmt::format("{}: not a kiln repro: {}", path, why));
  };
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_text_file(path));
  } catch (const nlohmann::json::exception& e) {
    throw fail(e.what());
  }
  const std::string dir = std::filesystem::path(path).parent_path().string();
  auto beside = [&](const std::string& name) {
    if (name.find('/') != std::string::npos)
      throw fail(fmt::format("'{}' is not a file name beside it", name));
    return (dir.empty() ? std::string(".") : dir) + "/" + name;
  };
  Repro r;
  try {
    if (!j.is_object() || j.value("format", "") != kFormat)
      throw fail(fmt::format("no \"format\": \"{}\"", kFormat));
    TensorMap constants;
    const std::string constants_file = j.at("constants").get<std::string>();
    if (!constants_file.empty()) constants = load_safetensors(beside(constants_file));
    r.graph = parse_graph(j.at("graph").get<std::string>(), path + " (graph)",
                          constants_file.empty() ? nullptr : &constants);
    r.bindings = json_integers<int64_t>(j.at("bindings"));
    if (r.bindings.size() != static_cast<size_t>(r.graph.num_symbols))
      throw fail(
          fmt::format("{} bindings for {} size symbols", r.bindings.size(), r.graph.num_symbols));
    for (int64_t b : r.bindings)
      if (b < 0 || b > kMaxElements) throw fail(fmt::format("size binding {} out of range", b));
    for (const auto& [name, strides] : j.at("strides").items()) {
      const GraphInput* input = find_input(r.graph, name);
      if (!input) throw fail(fmt::format("strides for %{}, which is no input", name));
      Shape s = json_integers<int64_t>(strides);
      if (s.size() != input->type.shape.size())
        throw fail(fmt::format("strides of %{} have the wrong rank", name));
      for (int64_t v : s)
        if (v < 0 || v > kMaxElements)
          throw fail(fmt::format("a stride of %{} is out of range", name));
      r.strides[name] = s;
    }
    r.recorded_mode = j.at("recorded_mode").get<std::string>();
    const nlohmann::json& replay = j.at("replay");
    r.mode = parse_compile_mode(replay.at("mode").get<std::string>(), path + " replay.mode");
    if (r.mode != CompileMode::InProcess && r.mode != CompileMode::Subprocess)
      throw fail("replay.mode must be inprocess or subprocess");
    r.autotune = replay.at("autotune").get<bool>();
    r.max_autotune = replay.at("max_autotune").get<bool>();
    r.coordinate_descent = replay.at("coordinate_descent").get<bool>();
    r.seed = json_integer<uint64_t>(j.at("seed"));
    const std::string inputs_file = j.at("saved_inputs").get<std::string>();
    if (!inputs_file.empty()) r.saved_inputs = load_safetensors(beside(inputs_file));
  } catch (const nlohmann::json::exception& e) {
    throw fail(e.what());
  }
  for (const auto& [name, t] : r.saved_inputs) {
    const GraphInput* input = find_input(r.graph, name);
    if (!input || t.dtype() != input->type.dtype || t.sizes() != shape_of(input->type, r.bindings))
      throw fail(fmt::format("saved input {} does not match the graph's inputs", name));
  }
  return r;
}

std::vector<Tensor> repro_inputs(const Repro& r) {
  manual_seed(r.seed);
  std::vector<Tensor> inputs;
  for (const GraphInput& in : r.graph.inputs) {
    if (auto saved = r.saved_inputs.find(in.name); saved != r.saved_inputs.end()) {
      inputs.push_back(saved->second);
      continue;
    }
    const Shape shape = shape_of(in.type, r.bindings);
    auto strided = r.strides.find(in.name);
    if (strided == r.strides.end()) {
      inputs.push_back(random_tensor(in.type.dtype, shape));
      continue;
    }
    // The elements the view spans: 1 + sum of (size - 1) * stride, each step checked.
    std::optional<int64_t> extent = 1;
    for (size_t d = 0; d < shape.size() && extent; ++d) {
      if (shape[d] == 0) {
        extent = 0;
        break;
      }
      auto step = limits::checked_mul(shape[d] - 1, strided->second[d]);
      extent = step ? limits::checked_add(*extent, *step) : std::nullopt;
      if (extent && *extent > kMaxElements) extent.reset();
    }
    if (!extent)
      throw Error(fmt::format("input %{}'s strides span more than {} elements of memory", in.name,
                              kMaxElements));
    inputs.push_back(make_view(random_tensor(in.type.dtype, {*extent}), shape, strided->second, 0));
  }
  return inputs;
}

}  // namespace kiln
