#include "driver/plan_builder.h"

#include <fmt/format.h>

#include <algorithm>
#include <limits>
#include <map>
#include <optional>

#include "autotune/spaces.h"
#include "cache/cache.h"
#include "codegen/c_emitter.h"
#include "codegen/gemm_template.h"
#include "driver/pipeline.h"
#include "kiln/error.h"
#include "loop/index.h"
#include "lower/lower.h"
#include "lower/schedule.h"
#include "support/log.h"
#include "support/spans.h"

namespace kiln {

namespace {

const Dialect& dialect_of(Device device) {
  return device == Device::cuda ? cuda_dialect() : cpp_dialect();
}

// What one launch of `k` works on in parallel: its elements, or its rows.
SymShape work_of(const LoopKernel& k) {
  if (k.kind == LoopKernel::Kind::Foreach) {
    // Each part grid-strides over the whole launch in turn: size it for the largest (a part
    // of symbolic size counts as larger than any constant one).
    auto size_of = [](const SymShape& work) {
      int64_t n = 1;
      for (const Dim& d : work) {
        if (d.sym >= 0) return std::numeric_limits<int64_t>::max();
        n = n > std::numeric_limits<int64_t>::max() / std::max<int64_t>(d.coeff, 1)
                ? std::numeric_limits<int64_t>::max()
                : n * d.coeff;
      }
      return n;
    };
    SymShape largest = work_of(k.parts.front());
    for (const LoopKernel& part : k.parts)
      if (SymShape w = work_of(part); size_of(w) > size_of(largest)) largest = std::move(w);
    return largest;
  }
  if (k.kind == LoopKernel::Kind::Pointwise) return k.shape;
  SymShape rows;
  for (size_t d = 0; d < k.shape.size(); ++d)
    if (std::find(k.reduced_dims.begin(), k.reduced_dims.end(), static_cast<int64_t>(d)) ==
        k.reduced_dims.end())
      rows.push_back(k.shape[d]);
  return rows;
}

// The values a kernel loads at a constant index (one element, whatever the element it
// writes): a flat kernel may not run over them in place.
std::vector<ValueId> read_at_constant_index(const LoopKernel& k) {
  std::vector<ValueId> values;
  auto scan = [&](const LoopKernel& part) {
    std::vector<const Expr*> roots;
    for (const Store& st : part.stores) roots.push_back(st.value.get());
    visit_nodes(roots, [&](const Expr& e) {
      if (is_constant_load(e)) values.push_back(part.params[static_cast<size_t>(e.load().param)]);
    });
  };
  if (k.kind == LoopKernel::Kind::Foreach) {
    for (const LoopKernel& part : k.parts) scan(part);
  } else {
    scan(k);
  }
  return values;
}

KernelLaunch launch_of(const LoopKernel& k, int num_symbols, const TuneTarget& target,
                       Device device) {
  KernelLaunch launch;
  launch.name = dialect_kernel_name(k.name, dialect_of(device));
  launch.kind = kernel_kind_word(k);
  launch.params = k.params;
  auto flat_pointwise = [](const LoopKernel& part) {
    return part.kind == LoopKernel::Kind::Pointwise && part.flat;
  };
  launch.elementwise = k.kind == LoopKernel::Kind::Foreach
                           ? std::all_of(k.parts.begin(), k.parts.end(), flat_pointwise)
                           : flat_pointwise(k);
  for (const LoopKernel& part : k.parts)
    launch.part_params.push_back(static_cast<int>(part.params.size()));
  if (launch.elementwise) launch.read_at_constant_index = read_at_constant_index(k);
  launch.source = emit_kernel(k, num_symbols, dialect_of(device));
  launch.work = work_of(k);
  launch.row_per_block = k.schedule.row_per_block;
  if (device == Device::cuda && k.kind == LoopKernel::Kind::Row && k.columns)
    launch.columns_per_block = 32;
  launch.threads = k.schedule.block_threads;
  launch.split = k.schedule.split_blocks;
  launch.phases = static_cast<int>(k.phases.size());
  for (int64_t d : k.reduced_dims) launch.reduced_work.push_back(k.shape[static_cast<size_t>(d)]);
  if (device == Device::cpu) launch.space = tuning_space(k, target);
  launch.config = launch.space.defaults;
  if (k.kind == LoopKernel::Kind::Foreach) {
    for (const LoopKernel& part : k.parts)
      launch.outputs.insert(launch.outputs.end(), part.params.begin(),
                            part.params.begin() + part.num_outputs);
  } else {
    launch.outputs.assign(k.params.begin(), k.params.begin() + k.num_outputs);
  }
  return launch;
}

// The fast stage builds a unit with tcc only when every kernel in it is at most this many
// elements (a constant shape): measured on 2-core Sapphire Rapids, tcc's scalar code costs
// 0.8 us more than gcc -O1's vector code at 256 elements of sin(x)*y+1 and 16 us more at
// 2048, while it compiles a unit in 25 ms instead of 210 (docs/design.md §5).
constexpr int64_t kLightKernelElements = 1024;

// The elements of a constant shape, capped just past kLightKernelElements; nullopt for a
// symbolic shape.
std::optional<int64_t> capped_elements(const SymShape& shape) {
  std::vector<int64_t> sizes;
  if (!try_const_shape(shape, &sizes)) return std::nullopt;
  int64_t elements = 1;
  for (int64_t d : sizes) elements = std::min(elements * d, kLightKernelElements + 1);
  return elements;
}

bool light_kernel(const LoopKernel& k) {
  if (k.kind != LoopKernel::Kind::Foreach) {
    std::optional<int64_t> n = capped_elements(k.shape);
    return n && *n <= kLightKernelElements;
  }
  int64_t total = 0;
  for (const LoopKernel& part : k.parts) {
    std::optional<int64_t> n = capped_elements(part.shape);
    if (!n) return false;
    total += *n;
  }
  return total <= kLightKernelElements;
}

// What makes two kernels the same function: the body under a placeholder name, the config.
std::string identity_of(const KernelLaunch& k) {
  return rename_kernel(k.source, k.name, "KILN_KERNEL") + "\nconfig " + config_text(k.config);
}

// `k`'s symbol: its name without the index (cpp_poi_fused_add_12 → cpp_poi_fused_add),
// then a hash of `identity` (identity_of(k)).
std::string symbol_of(const KernelLaunch& k, const std::string& identity) {
  std::string stem = k.name;
  size_t digits = stem.find_last_not_of("0123456789");
  if (digits != std::string::npos && digits + 1 < stem.size() && stem[digits] == '_')
    stem.resize(digits);
  return fmt::format("{}_{}", stem, content_key(identity).substr(0, 12));
}

}  // namespace

size_t kernels_per_unit(size_t kernels) {
  return std::max(kKernelsPerUnit, (kernels + kUnitsPerGraph - 1) / kUnitsPerGraph);
}

void add_gemm_templates(CompiledPlan& plan, const Toolchain& toolchain) {
  if (plan.device != Device::cpu) return;  // CUDA matmuls stay cuBLASLt calls
  const Graph& g = plan.graph;
  const TuneTarget target = host_tune_target();
  bool added = false;
  for (PlanStep& step : plan.steps) {
    if (step.kind != PlanStep::Kind::Ext) continue;
    const Node& node = g.nodes[static_cast<size_t>(step.node)];
    if (node.op != Op::matmul) continue;
    const TensorType &a = g.value_type(node.inputs[0]), &b = g.value_type(node.inputs[1]);
    if (a.shape.size() < 2 || b.shape.size() != 2 || a.dtype != DType::f32 ||
        b.dtype != DType::f32 || node.type.dtype != DType::f32)
      continue;
    // B as the transpose of a 2-D value (linear's weight): the template reads that value.
    ValueId b_value = node.inputs[1];
    bool transposed = false;
    if (int32_t producer = g.node_index(b_value); producer >= 0) {
      const Node& p = g.nodes[static_cast<size_t>(producer)];
      if (p.op == Op::permute && p.attrs.get_ints("dims") == std::vector<int64_t>{1, 0}) {
        b_value = p.inputs[0];
        transposed = true;
      }
    }
    const ValueId out = g.node_value(static_cast<size_t>(step.node));
    KernelLaunch k;
    k.name = fmt::format("cpp_tem_fused_mm_{}", plan.kernels.size());
    k.kind = "tem";
    k.params = {out, node.inputs[0], b_value};
    k.outputs = {out};
    std::vector<std::string> rows;
    for (size_t d = 0; d + 1 < a.shape.size(); ++d)
      rows.push_back(render_index(index_dim(a.shape[d])));
    GemmShape shape{fmt::format("{}{}", rows.size() > 1 ? "(int64_t)" : "", fmt::join(rows, " * ")),
                    render_index(index_dim(node.type.shape.back())),
                    render_index(index_dim(a.shape.back())), transposed};
    k.source = emit_gemm_template(k.name, shape, g.num_symbols, cpp_dialect());
    k.space = gemm_tuning_space(target);
    k.config = k.space.defaults;
    plan.read_by_kernel[static_cast<size_t>(node.inputs[0])] = true;
    plan.read_by_kernel[static_cast<size_t>(b_value)] = true;
    step = PlanStep{PlanStep::Kind::Kernel, static_cast<int>(plan.kernels.size()), -1};
    plan.kernels.push_back(std::move(k));
    added = true;
  }
  if (added) assemble_units(plan, toolchain);
}

void assemble_units(CompiledPlan& plan, const Toolchain& toolchain) {
  // The distinct kernels, in order of first use, light ones apart from the rest.
  std::map<std::string, size_t> first_of;         // symbol → its first kernel
  std::map<std::string, std::string> identities;  // symbol → identity_of its first kernel
  std::vector<size_t> distinct[2];                // [light]: kernel indices
  for (size_t i = 0; i < plan.kernels.size(); ++i) {
    KernelLaunch& k = plan.kernels[i];
    std::string identity = identity_of(k);
    k.symbol = symbol_of(k, identity);
    auto [it, fresh] = identities.emplace(k.symbol, std::move(identity));
    if (fresh) {
      first_of.emplace(k.symbol, i);
      distinct[k.light].push_back(i);
    } else if (it->second != identity_of(k)) {
      // A 48-bit hash prefix shared by two different kernels: never merge them silently.
      throw CompileError(fmt::format("kernels {} and {} of graph {} hash to one symbol {}",
                                     plan.kernels[first_of.at(k.symbol)].name, k.name,
                                     plan.graph.name, k.symbol));
    }
  }
  const size_t per_unit = kernels_per_unit(first_of.size());
  plan.units.clear();
  for (bool light : {false, true}) {
    for (size_t d = 0; d < distinct[light].size(); ++d) {
      if (d % per_unit == 0) plan.units.push_back(ObjectUnit{{}, {}, {}, plan.device, light});
      plan.kernels[distinct[light][d]].unit = static_cast<int>(plan.units.size() - 1);
    }
  }
  std::vector<std::vector<KernelSource>> sources(plan.units.size());
  for (size_t i = 0; i < plan.kernels.size(); ++i) {
    KernelLaunch& k = plan.kernels[i];
    const KernelLaunch& first = plan.kernels[first_of.at(k.symbol)];
    k.unit = first.unit;
    if (&first == &k)
      sources[static_cast<size_t>(k.unit)].push_back(
          {k.symbol, rename_kernel(k.source, k.name, k.symbol), k.config});
  }
  for (size_t u = 0; u < plan.units.size(); ++u) {
    ObjectUnit& unit = plan.units[u];
    unit.name = sources[u].front().name;
    unit.source = emit_translation_unit(sources[u], dialect_of(plan.device));
    unit.key = kernel_key(unit_toolchain(toolchain, unit.light).identity(), unit.source);
  }
}

CompiledPlan build_plan(const Graph& graph, const Toolchain& toolchain, Device device) {
  Graph optimized;
  {
    SpanScope span("compile", "passes " + graph.name);
    optimized = optimize_graph(graph, device);
  }
  Program program;
  {
    SpanScope span("compile", "lowering " + graph.name);
    program = lower_graph(optimized);
    schedule_program(program, device);
    verify_program(program);
    if (log_enabled("lowering"))
      log_line("lowering", fmt::format("{}:\n{}", graph.name, print_program(program)));
  }
  SpanScope span("compile", "codegen " + graph.name);
  CompiledPlan plan;
  plan.device = device;
  const Graph& g = program.graph;
  const TuneTarget target = host_tune_target();
  for (const LoopKernel& k : program.kernels) {
    plan.kernels.push_back(launch_of(k, g.num_symbols, target, device));
    plan.kernels.back().light = device == Device::cpu && light_kernel(k);
  }
  for (const Step& s : program.steps)
    plan.steps.push_back(s.kind == Step::Kind::Kernel
                             ? PlanStep{PlanStep::Kind::Kernel, s.kernel, -1}
                             : PlanStep{PlanStep::Kind::Ext, -1, s.node});
  plan.read_by_kernel = program.read_by_kernel;
  plan.graph = std::move(program.graph);
  assemble_units(plan, toolchain);
  return plan;
}

}  // namespace kiln
