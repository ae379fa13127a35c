#include "driver/replay_repro.h"

#include <fmt/format.h>

#include <cmath>

#include "driver/pipeline.h"
#include "graph/text.h"
#include "kiln/ops.h"
#include "runtime/executable.h"
#include "tensor/tensor_impl.h"

namespace kiln {

namespace {

// The tolerance of values of `dtype` (compiled vs eager): 0 for exact dtypes.
std::pair<double, double> tolerance(DType dtype) {
  switch (dtype) {
    case DType::f64:
      return {1e-9, 1e-9};
    case DType::f32:
      return {1e-4, 1e-4};
    case DType::f16:
      return {1e-2, 1e-2};
    case DType::bf16:
      return {2e-2, 2e-2};
    default:
      return {0, 0};
  }
}

// The tolerance of a graph's outputs: the loosest of its floating values' dtypes, since a
// value computed in f32 bounds the accuracy of the f64 results made from it (a sin in f32
// then added to an f64 input differs by f32 rounding, not f64's).
std::pair<double, double> graph_tolerance(const Graph& g) {
  std::pair<double, double> loosest{0, 0};
  for (ValueId v = 0; v < g.num_values(); ++v) {
    auto t = tolerance(g.value_type(v).dtype);
    loosest = {std::max(loosest.first, t.first), std::max(loosest.second, t.second)};
  }
  return loosest;
}

// "" when `got` matches `want` within (atol, rtol) for floating outputs, else what differs.
std::string compare(const Tensor& got, const Tensor& want, std::pair<double, double> tol) {
  if (got.dtype() != want.dtype())
    return fmt::format("dtype {} instead of {}", dtype_name(got.dtype()), dtype_name(want.dtype()));
  if (got.sizes() != want.sizes())
    return fmt::format("shape {} instead of {}", shape_string(got.sizes()),
                       shape_string(want.sizes()));
  auto [atol, rtol] = is_floating(want.dtype()) ? tol : std::pair<double, double>{0, 0};
  Tensor a = got.to(DType::f64).contiguous(), b = want.to(DType::f64).contiguous();
  const double* pa = reinterpret_cast<const double*>(a.impl()->data_ptr());
  const double* pb = reinterpret_cast<const double*>(b.impl()->data_ptr());
  int64_t bad = 0, first = -1;
  double worst = 0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    bool same = (std::isnan(pa[i]) && std::isnan(pb[i])) || pa[i] == pb[i] ||
                std::abs(pa[i] - pb[i]) <= atol + rtol * std::abs(pb[i]);
    if (same) continue;
    if (first < 0) first = i;
    ++bad;
    if (!std::isnan(pa[i] - pb[i])) worst = std::max(worst, std::abs(pa[i] - pb[i]));
  }
  if (bad == 0) return "";
  return fmt::format(
      "{} of {} elements differ (atol {}, rtol {}); first at flat index {}: compiled {} vs eager "
      "{}; "
      "largest difference {}",
      bad, a.numel(), atol, rtol, first, pa[first], pb[first], worst);
}

}  // namespace

ReproOutcome run_repro(const Repro& r) {
  ReproOutcome outcome;
  std::string what =
      fmt::format("graph {} ({} nodes), replayed in {} mode{}{} (recorded in {})", r.graph.name,
                  r.graph.nodes.size(), compile_mode_name(r.mode), r.autotune ? ", autotuned" : "",
                  r.max_autotune ? ", max_autotune" : "", r.recorded_mode);
  std::vector<Tensor> expected, got;
  try {
    std::vector<Tensor> inputs = repro_inputs(r);
    expected = make_interpreter_executable(r.graph)->run(inputs);
    CompileOptions o;
    o.mode = r.mode;
    o.name = r.graph.name;
    o.autotune = r.autotune;
    o.max_autotune = r.max_autotune;
    o.coordinate_descent = r.coordinate_descent;
    got = compile_graph(r.graph, resolve_options(o))->run(inputs);
  } catch (const std::exception& e) {
    outcome.exit_code = 2;
    outcome.report = fmt::format("{}: error: {}", what, e.what());
    return outcome;
  }
  std::string differences;
  for (size_t i = 0; i < expected.size(); ++i) {
    std::string d =
        i < got.size() ? compare(got[i], expected[i], graph_tolerance(r.graph)) : "missing";
    if (!d.empty()) differences += fmt::format("\n  output {}: {}", i, d);
  }
  outcome.exit_code = differences.empty() ? 0 : 1;
  outcome.report = differences.empty()
                       ? fmt::format("{}: {} outputs match eager", what, expected.size())
                       : fmt::format("{}: MISMATCH{}", what, differences);
  return outcome;
}

}  // namespace kiln
