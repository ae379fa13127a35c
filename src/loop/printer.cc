// The loop program as text (loop/kernel.h). Example:
//   kernel cpp_per_fused_amax_div_exp_sub_sum_0 row flat shape=[8, 32] reduce=[1]
//     schedule cpu split_row=never
//     params p0: f32 out %4, p1: f32 %x
//       phase 0 = amax(load p1[((i0 * 32) + i1)] @element) -> f32
//       t0 = exp(sub(load p1[((i0 * 32) + i1)] @element, acc0))
//       phase 1 = sum(t0) -> f32
//       store p0[((i0 * 32) + i1)] @element = div(t0, acc1)
// Parameters name graph values as the graph text does; an Apply shows its dtype (":f32")
// only where it differs from its first operand's.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <map>
#include <set>

#include "graph/attrs.h"
#include "graph/text.h"
#include "loop/kernel.h"

namespace kiln {

namespace {

const char* access_suffix(Access access) {
  switch (access) {
    case Access::row_element:
      return " @element";
    case Access::row:
      return " @row";
    case Access::other:
      break;
  }
  return "";
}

const char* kind_word(LoopKernel::Kind kind) {
  switch (kind) {
    case LoopKernel::Kind::Pointwise:
      return "pointwise";
    case LoopKernel::Kind::Row:
      return "row";
    case LoopKernel::Kind::Foreach:
      return "foreach";
  }
  return "?";
}

// Prints a kernel's expressions: a node reached more than once becomes a temporary t<N>,
// numbered in the order of first use (phases, then row stores, then element stores).
class ExprPrinter {
 public:
  explicit ExprPrinter(std::string indent) : indent_(std::move(indent)) {}

  void count(const ExprPtr& e) {
    if (++uses_[e.get()] > 1) return;
    for (const ExprPtr& a : e->operands()) count(a);
  }

  // Lines defining the temporaries `e` needs, then its text.
  std::string text(const ExprPtr& e, std::string* lines) {
    if (auto it = names_.find(e.get()); it != names_.end()) return it->second;
    std::string body = render(e, lines);
    if (uses_[e.get()] < 2 || e->kind() != Expr::Kind::Apply) return body;
    std::string name = fmt::format("t{}", names_.size());
    *lines += fmt::format("{}{} = {}\n", indent_, name, body);
    names_.emplace(e.get(), name);
    return name;
  }

 private:
  std::string render(const ExprPtr& e, std::string* lines) {
    switch (e->kind()) {
      case Expr::Kind::Load: {
        const Expr::Load& l = e->load();
        return fmt::format("load p{}[{}]{}", l.param, render_index(l.index),
                           access_suffix(l.access));
      }
      case Expr::Kind::Accumulator:
        return fmt::format("acc{}", e->phase());
      case Expr::Kind::Position:
        return fmt::format("position[{}]{}", render_index(e->position().index),
                           access_suffix(e->position().access));
      case Expr::Kind::Apply:
        break;
    }
    std::vector<std::string> args;
    const Expr::Apply& apply = e->apply();
    for (const ExprPtr& a : apply.args) args.push_back(text(a, lines));
    for (const auto& [name, value] : apply.attrs.items())
      args.push_back(fmt::format("{}={}", name, attr_value_string(value)));
    // The dtype where it changes: a cast, a compare, an integer op computing in floats.
    const bool same = !apply.args.empty() && apply.args[0]->dtype == e->dtype;
    return fmt::format("{}({}){}", op_name(apply.op), fmt::join(args, ", "),
                       same ? "" : fmt::format(":{}", dtype_name(e->dtype)));
  }

  std::string indent_;
  std::map<const Expr*, int> uses_;
  std::map<const Expr*, std::string> names_;
};

// The schedule's axes that apply to the kernel, as words: "cpu split_row=never",
// "cuda row_per_block threads=256 held=2x4 whole_runs bounds=8".
std::string schedule_text(const LoopKernel& k) {
  const Schedule& s = k.schedule;
  if (!s.decided) return "unscheduled";
  std::vector<std::string> words{std::string(device_name(s.device))};
  const bool rows = k.kind == LoopKernel::Kind::Row;
  if (k.kind == LoopKernel::Kind::Pointwise && !k.flat && k.shape.size() > 1)
    words.push_back(s.nested_loops ? "nested" : "flat_index");
  if (rows && s.device == Device::cpu && !k.columns) {
    const char* split = s.split_row == Schedule::RowSplit::always      ? "always"
                        : s.split_row == Schedule::RowSplit::when_long ? "when_long"
                                                                       : "never";
    words.push_back(fmt::format("split_row={}", split));
  }
  if (s.device == Device::cuda && k.kind != LoopKernel::Kind::Foreach) {
    if (rows) words.push_back(s.row_per_block ? "row_per_block" : "column_warps");
    words.push_back(fmt::format("threads={}", s.block_threads));
    if (s.held.chunks > 0) words.push_back(fmt::format("held={}x{}", s.held.chunks, s.held.width));
    if (s.whole_runs) words.push_back("whole_runs");
    if (s.min_blocks_per_sm > 0) words.push_back(fmt::format("bounds={}", s.min_blocks_per_sm));
    if (s.split_blocks) words.push_back("split_blocks");
    if (s.vector_width > 0) words.push_back(fmt::format("vector={}", s.vector_width));
  }
  return fmt::format("{}", fmt::join(words, " "));
}

// Appends the store (after the temporaries its value needs) to `lines`.
void add_store(const Store& st, const char* what, const std::string& indent, ExprPrinter& p,
               std::string* lines) {
  std::string value = p.text(st.value, lines);
  *lines += fmt::format("{}{} p{}[{}]{} = {}\n", indent, what, st.param, render_index(st.index),
                        access_suffix(st.access), value);
}

std::string kernel_text(const LoopKernel& k, const Graph* graph, const std::string& indent) {
  std::string out = fmt::format("{}kernel {} {}{}{}", indent, k.name, kind_word(k.kind),
                                k.flat ? " flat" : "", k.columns ? " columns" : "");
  if (k.kind != LoopKernel::Kind::Foreach) out += fmt::format(" shape={}", shape_string(k.shape));
  if (!k.reduced_dims.empty()) out += fmt::format(" reduce=[{}]", fmt::join(k.reduced_dims, ", "));
  out += "\n";
  std::vector<std::string> params;
  for (size_t p = 0; p < k.params.size(); ++p)
    params.push_back(fmt::format(
        "p{}: {}{} {}", p, dtype_name(k.param_dtypes.at(p)), writes_param(k, p) ? " out" : "",
        graph ? value_name(*graph, k.params[p]) : fmt::format("v{}", k.params[p])));
  out += fmt::format("{}  schedule {}\n", indent, schedule_text(k));
  out += fmt::format("{}  params {}\n", indent, fmt::join(params, ", "));
  if (k.kind == LoopKernel::Kind::Foreach) {
    for (const LoopKernel& part : k.parts) out += kernel_text(part, graph, indent + "  ");
    return out;
  }
  const std::string body_indent = indent + "    ";
  ExprPrinter printer(body_indent);
  for (const ReducePhase& ph : k.phases) printer.count(ph.value);
  for (const Store& st : k.row_stores) printer.count(st.value);
  for (const Store& st : k.stores) printer.count(st.value);
  std::string lines;
  for (size_t i = 0; i < k.phases.size(); ++i) {
    const ReducePhase& ph = k.phases[i];
    std::string value = printer.text(ph.value, &lines);
    lines += fmt::format("{}phase {} = {}({}) -> {}\n", body_indent, i, op_name(ph.op), value,
                         dtype_name(ph.dtype));
  }
  for (const Store& st : k.row_stores) add_store(st, "row store", body_indent, printer, &lines);
  for (const Store& st : k.stores) add_store(st, "store", body_indent, printer, &lines);
  return out + lines;
}

}  // namespace

std::string print_kernel(const LoopKernel& kernel, const Graph* graph) {
  return kernel_text(kernel, graph, "");
}

std::string print_program(const Program& program) {
  std::string out;
  for (const LoopKernel& k : program.kernels) out += print_kernel(k, &program.graph);
  std::vector<std::string> steps;
  for (const Step& s : program.steps)
    steps.push_back(
        s.kind == Step::Kind::Kernel
            ? fmt::format("kernel {}", s.kernel)
            : fmt::format("ext %{} = {}", s.node,
                          op_name(program.graph.nodes.at(static_cast<size_t>(s.node)).op)));
  out += fmt::format("steps: {}\n", fmt::join(steps, "; "));
  return out;
}

}  // namespace kiln
