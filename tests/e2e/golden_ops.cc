#include "e2e/golden_ops.h"

#include <fmt/format.h>

#include <fstream>
#include <functional>
#include <map>

#include "support/compare.h"

namespace kiln::testing {

std::vector<GoldenCase> load_golden_cases() {
  std::ifstream in(data_path("golden_ops.json"));
  nlohmann::json doc = nlohmann::json::parse(in);
  TensorMap tensors = load_safetensors(data_path("golden_ops.safetensors"));
  std::vector<GoldenCase> cases;
  for (const auto& c : doc["cases"]) {
    GoldenCase g{c["id"].get<int>(),
                 c["op"].get<std::string>(),
                 c["attrs"],
                 {},
                 {},
                 c["rtol"].get<double>(),
                 c["atol"].get<double>(),
                 c["note"].get<std::string>()};
    for (const auto& name : c["inputs"]) g.inputs.push_back(tensors.at(name.get<std::string>()));
    for (const auto& name : c["outputs"]) g.expected.push_back(tensors.at(name.get<std::string>()));
    cases.push_back(std::move(g));
  }
  return cases;
}

namespace {

using Unary = Tensor (*)(const Tensor&);
using Binary = Tensor (*)(const Tensor&, const Tensor&);
using BinaryScalar = Tensor (*)(const Tensor&, Scalar);

const std::map<std::string, Unary>& unary_ops() {
  static const std::map<std::string, Unary> ops = {{"neg", neg},
                                                   {"abs", abs},
                                                   {"exp", exp},
                                                   {"log", log},
                                                   {"log1p", log1p},
                                                   {"sqrt", sqrt},
                                                   {"rsqrt", rsqrt},
                                                   {"sin", sin},
                                                   {"cos", cos},
                                                   {"tan", tan},
                                                   {"tanh", tanh},
                                                   {"sigmoid", sigmoid},
                                                   {"relu", relu},
                                                   {"erf", erf},
                                                   {"floor", floor},
                                                   {"ceil", ceil},
                                                   {"round", round},
                                                   {"sign", sign},
                                                   {"reciprocal", reciprocal},
                                                   {"isnan", isnan},
                                                   {"logical_not", logical_not}};
  return ops;
}

const std::map<std::string, Binary>& binary_ops() {
  static const std::map<std::string, Binary> ops = {{"add", add},
                                                    {"sub", sub},
                                                    {"mul", mul},
                                                    {"div", div},
                                                    {"maximum", maximum},
                                                    {"minimum", minimum},
                                                    {"atan2", atan2},
                                                    {"fmod", fmod},
                                                    {"remainder", remainder},
                                                    {"pow", pow},
                                                    {"eq", eq},
                                                    {"ne", ne},
                                                    {"lt", lt},
                                                    {"le", le},
                                                    {"gt", gt},
                                                    {"ge", ge},
                                                    {"logical_and", logical_and},
                                                    {"logical_or", logical_or},
                                                    {"logical_xor", logical_xor}};
  return ops;
}

const std::map<std::string, BinaryScalar>& scalar_ops() {
  static const std::map<std::string, BinaryScalar> ops = {
      {"add_scalar", add}, {"sub_scalar", sub}, {"mul_scalar", mul}, {"div_scalar", div}};
  return ops;
}

Shape ints(const nlohmann::json& j) { return j.get<Shape>(); }

Scalar scalar_of(const nlohmann::json& j) {
  if (j.is_number_integer()) return Scalar(j.get<int64_t>());
  return Scalar(j.get<double>());
}

}  // namespace

std::vector<Tensor> apply_golden_op(const GoldenCase& c, const std::vector<Tensor>& in) {
  const std::string& op = c.op;
  const nlohmann::json& a = c.attrs;
  if (auto it = unary_ops().find(op); it != unary_ops().end()) return {it->second(in[0])};
  if (auto it = binary_ops().find(op); it != binary_ops().end()) return {it->second(in[0], in[1])};
  if (auto it = scalar_ops().find(op); it != scalar_ops().end())
    return {it->second(in[0], scalar_of(a["scalar"]))};
  bool keep = a.value("keepdim", false);
  if (op == "gelu") return {gelu(in[0], a["approximate"].get<std::string>())};
  if (op == "where") return {where(in[0], in[1], in[2])};
  if (op == "clamp") return {clamp(in[0], scalar_of(a["min"]), scalar_of(a["max"]))};
  if (op == "sum") return {sum(in[0], ints(a["dims"]), keep)};
  if (op == "mean") return {mean(in[0], ints(a["dims"]), keep)};
  if (op == "amax") return {amax(in[0], ints(a["dims"]), keep)};
  if (op == "amin") return {amin(in[0], ints(a["dims"]), keep)};
  if (op == "logsumexp") return {logsumexp(in[0], ints(a["dims"]), keep)};
  if (op == "prod") return {prod(in[0], a["dims"][0].get<int64_t>(), keep)};
  if (op == "argmax") return {argmax(in[0], a["dim"].get<int64_t>())};
  if (op == "argmin") return {argmin(in[0], a["dim"].get<int64_t>())};
  if (op == "var") return {var(in[0], ints(a["dims"]), a["correction"].get<int64_t>())};
  if (op == "std") return {kiln::std(in[0], ints(a["dims"]), a["correction"].get<int64_t>())};
  if (op == "softmax") return {softmax(in[0], a["dim"].get<int64_t>())};
  if (op == "log_softmax") return {log_softmax(in[0], a["dim"].get<int64_t>())};
  if (op == "layer_norm")
    return {layer_norm(in[0], ints(a["normalized_shape"]), in[1], in[2], a["eps"].get<double>())};
  if (op == "matmul") return {matmul(in[0], in[1])};
  if (op == "linear") return {linear(in[0], in[1], in[2])};
  if (op == "bmm") return {bmm(in[0], in[1])};
  if (op == "cat") return {cat(in, a["dim"].get<int64_t>())};
  if (op == "stack") return {stack(in, a["dim"].get<int64_t>())};
  if (op == "transpose_contiguous")
    return {in[0].transpose(a["dim0"].get<int64_t>(), a["dim1"].get<int64_t>()).contiguous()};
  if (op == "permute_contiguous") return {in[0].permute(ints(a["dims"])).contiguous()};
  if (op == "slice") {
    Tensor t = in[0];
    int64_t d = 0;
    for (const auto& s : a["slices"]) {
      t = t.slice(d++, s[0].get<int64_t>(), s[1].get<int64_t>(), s[2].get<int64_t>());
    }
    return {t.contiguous()};
  }
  if (op == "expand_add") return {in[0].expand(ints(a["size"])) + in[1]};
  if (op == "index_select") return {index_select(in[0], a["dim"].get<int64_t>(), in[1])};
  if (op == "gather") return {gather(in[0], a["dim"].get<int64_t>(), in[1])};
  if (op == "embedding") return {embedding(in[0], in[1])};
  if (op == "adaptive_avg_pool2d") return {adaptive_avg_pool2d(in[0], ints(a["output_size"]))};
  if (op == "to_dtype") {
    DType d;
    if (!parse_dtype(a["dtype"].get<std::string>(), &d)) throw Error("bad dtype in golden case");
    return {in[0].to(d)};
  }
  throw Error(fmt::format("golden case {}: op '{}' has no kiln mapping", c.id, op));
}

}  // namespace kiln::testing
