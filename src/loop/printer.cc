// The loop program as text (loop/kernel.h). Example:
//   kernel cpp_per_fused_amax_div_exp_sub_sum_0 row flat shape=[8, 32] reduce=[1]
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
    for (const ExprPtr& a : e->args) count(a);
  }

  // Lines defining the temporaries `e` needs, then its text.
  std::string text(const ExprPtr& e, std::string* lines) {
    if (auto it = names_.find(e.get()); it != names_.end()) return it->second;
    std::string body = render(e, lines);
    if (uses_[e.get()] < 2 || e->kind != Expr::Kind::Apply) return body;
    std::string name = fmt::format("t{}", names_.size());
    *lines += fmt::format("{}{} = {}\n", indent_, name, body);
    names_.emplace(e.get(), name);
    return name;
  }

 private:
  std::string render(const ExprPtr& e, std::string* lines) {
    switch (e->kind) {
      case Expr::Kind::Load:
        return fmt::format("load p{}[{}]{}", e->param, render_index(e->index),
                           access_suffix(e->access));
      case Expr::Kind::Accumulator:
        return fmt::format("acc{}", e->accumulator);
      case Expr::Kind::Apply:
        break;
    }
    std::vector<std::string> args;
    for (const ExprPtr& a : e->args) args.push_back(text(a, lines));
    for (const auto& [name, value] : e->attrs.items())
      args.push_back(fmt::format("{}={}", name, attr_value_string(value)));
    // The dtype where it changes: a cast, a compare, an integer op computing in floats.
    const bool same = !e->args.empty() && e->args[0]->dtype == e->dtype;
    return fmt::format("{}({}){}", op_name(e->op), fmt::join(args, ", "),
                       same ? "" : fmt::format(":{}", dtype_name(e->dtype)));
  }

  std::string indent_;
  std::map<const Expr*, int> uses_;
  std::map<const Expr*, std::string> names_;
};

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
  std::vector<bool> written(k.params.size(), false);  // a foreach kernel's: each part's first
  if (k.kind == LoopKernel::Kind::Foreach) {
    size_t base = 0;
    for (const LoopKernel& part : k.parts) {
      if (base < written.size()) written[base] = true;
      base += part.params.size();
    }
  } else {
    for (size_t p = 0; p < written.size(); ++p) written[p] = static_cast<int>(p) < k.num_outputs;
  }
  std::vector<std::string> params;
  for (size_t p = 0; p < k.params.size(); ++p)
    params.push_back(
        fmt::format("p{}: {}{} {}", p, dtype_name(k.param_dtypes.at(p)), written[p] ? " out" : "",
                    graph ? value_name(*graph, k.params[p]) : fmt::format("v{}", k.params[p])));
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
