#include "codegen/row_kernels.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <set>
#include <string_view>

#include "codegen/kernel_writer.h"
#include "graph/infer.h"
#include "kiln/error.h"

namespace kiln::emit {

Accumulation accumulation(const ReducePhase& phase) {
  DType d = phase.dtype;
  bool fp = is_floating(d);
  switch (phase.op) {
    case Op::sum:
      return fp ? Accumulation{"double", "0.0",      "{a} += (double){v};", {{"+", "{a}"}}, "",
                               "",       "{x} + {y}"}
                : Accumulation{"int64_t",
                               "0",
                               "{a} = (int64_t)((uint64_t){a} + (uint64_t){v});",
                               {{"+", "{a}"}},
                               "",
                               "",
                               "(int64_t)((uint64_t){x} + (uint64_t){y})"};
    case Op::prod:
      return fp ? Accumulation{"double", "1.0",      "{a} *= (double){v};", {{"*", "{a}"}}, "",
                               "",       "{x} * {y}"}
                : Accumulation{"int64_t",
                               "1",
                               "{a} = (int64_t)((uint64_t){a} * (uint64_t){v});",
                               {{"*", "{a}"}},
                               "",
                               "",
                               "(int64_t)((uint64_t){x} * (uint64_t){y})"};
    case Op::amax:
    case Op::amin: {
      std::string type = type_names(d).compute;
      std::string init = fp ? (phase.op == Op::amax ? "(-kiln_inff())" : "kiln_inff()")
                         : d == DType::i32 ? (phase.op == Op::amax ? "INT32_MIN" : "INT32_MAX")
                         : d == DType::i64 ? (phase.op == Op::amax ? "INT64_MIN" : "INT64_MAX")
                                           : (phase.op == Op::amax ? "0" : "1");
      // Any order gives the same max; a NaN anywhere makes the result NaN, through a flag
      // reduced beside it (a NaN-propagating compare would not vectorize).
      const char* cmp = phase.op == Op::amax ? ">" : "<";
      const char* reduction = phase.op == Op::amax ? "max" : "min";
      std::string update = fmt::format("{{a}} = {{v}} {} {{a}} ? {{v}} : {{a}};", cmp);
      std::string combine = fmt::format("({{y}} {} {{x}} ? {{y}} : {{x}})", cmp);
      if (!fp) return {type, init, update, {{reduction, "{a}"}}, "", "", combine};
      std::string nan = d == DType::f64 ? "((double)kiln_nanf())" : "kiln_nanf()";
      return {type,
              init,
              update + " {n} |= ({v} != {v});",
              {{reduction, "{a}"}, {"|", "{n}"}},
              "int {n} = 0;",
              fmt::format("if ({{n}}) {{a}} = {};", nan),
              combine};
    }
    default:
      break;
  }
  throw CompileError(fmt::format("cpp codegen: {} is not a row reduction", op_name(phase.op)));
}

// The GPU's accumulations: as accumulation(), except that float max and min propagate a NaN
// through the compare itself (no flag and no second block-wide combine; the CPU's flag is
// there for vectorization, which GPU threads do not need).
Accumulation gpu_accumulation(const ReducePhase& phase) {
  Accumulation acc = accumulation(phase);
  if (acc.nan_flag.empty()) return acc;
  const char* cmp = phase.op == Op::amax ? ">" : "<";
  acc.update = fmt::format("{{a}} = ({{v}} {0} {{a}} || {{v}} != {{v}}) ? {{v}} : {{a}};", cmp);
  acc.combine = fmt::format("(({{y}}) {0} ({{x}}) || ({{y}}) != ({{y}})) ? ({{y}}) : ({{x}})", cmp);
  acc.reductions.clear();
  acc.nan_flag.clear();
  acc.after.clear();
  return acc;
}

std::string reduction_clauses(const Accumulation& acc, const Dialect& dialect) {
  std::vector<std::string> clauses;
  for (const auto& [op, var] : acc.reductions)
    clauses.push_back(fmt::format(fmt::runtime(dialect.reduction_clause), fmt::arg("op", op),
                                  fmt::arg("var", var)));
  return fmt::format("{}", fmt::join(clauses, " "));
}

namespace {

// A pointwise kernel (or a foreach part) storing several values per element may run with
// one of them written over an input it reads (PlanExecutable::run_writing_into): its
// buffers are then declared without restrict, so that C's order (every value computed,
// then stored: pointwise_loops) is the order its loads and stores happen in. Its loops
// keep their simd pragmas, which already assert that iterations do not depend on each
// other.
bool stores_several_per_element(const LoopKernel& k) {
  if (k.kind == LoopKernel::Kind::Foreach)
    return std::any_of(k.parts.begin(), k.parts.end(), stores_several_per_element);
  return k.kind == LoopKernel::Kind::Pointwise && k.num_outputs > 1;
}

}  // namespace

std::string size_declarations(int num_symbols) {
  std::string src;
  for (int s = 0; s < num_symbols; ++s)
    src += fmt::format("  const int64_t s{} = sizes[{}];\n", s, s);
  if (num_symbols == 0) src += "  (void)sizes;\n";
  return src;
}

std::string param_declarations(const LoopKernel& k, const Dialect& dialect,
                               const std::string& buffers) {
  std::string src;
  const char* restrict_word = stores_several_per_element(k) ? "" : dialect.restrict_word;
  for (size_t p = 0; p < k.params.size(); ++p) {
    const char* t = type_names(k.param_dtypes[p]).storage;
    src += fmt::format("  {}{}* {} p{} = ({}*){}[{}];\n", writes_param(k, p) ? "" : "const ", t,
                       restrict_word, p, t, buffers, p);
  }
  return src;
}

std::string params_and_sizes(const LoopKernel& k, int num_symbols, const Dialect& dialect) {
  return size_declarations(num_symbols) + param_declarations(k, dialect, "buffers");
}

std::string product(const std::vector<std::string>& extents) {
  if (extents.empty()) return "1";
  if (extents.size() == 1) return extents[0];
  // In 64 bits from the first factor on: C would multiply two int literals as int
  // (65536 * 65536 is 0 there).
  return fmt::format("(int64_t){}", fmt::join(extents, " * "));
}

bool contains(const ExprPtr& tree, const Expr* target) {
  bool found = false;
  visit_nodes({tree.get()}, [&](const Expr& x) { found |= &x == target; });
  return found;
}

bool has_transcendental(const ExprPtr& tree) {
  bool found = false;
  visit_nodes({tree.get()}, [&](const Expr& x) {
    found |= x.kind() == Expr::Kind::Apply && is_transcendental(x.apply().op);
  });
  return found;
}

CachedRowValue find_cached_row_value(const LoopKernel& k) {
  if (!k.flat || k.columns) return {};
  for (size_t p = k.phases.size(); p-- > 0;) {
    const ExprPtr& v = k.phases[p].value;
    if ((v->dtype != DType::f32 && v->dtype != DType::f64) || !has_transcendental(v)) continue;
    for (const Store& st : k.stores) {
      if (st.access != Access::row_element ||
          k.param_dtypes[static_cast<size_t>(st.param)] != v->dtype || !contains(st.value, v.get()))
        continue;
      return {static_cast<int>(p), st.param, v.get()};
    }
  }
  return {};
}

void collect_row_loads(const ExprPtr& e, std::set<int>* params) {
  visit_nodes({e.get()}, [&](const Expr& x) {
    if (x.kind() == Expr::Kind::Load && x.load().access == Access::row_element)
      params->insert(x.load().param);
  });
}

// The inputs a row kernel reads along its rows: the next row of each is prefetched while
// the current one is worked on from cache (the first phase streams it from memory; without
// this the later phases leave the memory idle). 12-15% on layer_norm here.
std::set<int> streamed_inputs(const LoopKernel& k) {
  std::set<int> params;
  if (!k.flat || k.columns) return params;
  for (const ReducePhase& ph : k.phases) collect_row_loads(ph.value, &params);
  for (const Store& st : k.stores) collect_row_loads(st.value, &params);
  return params;
}

// The loop over the row's elements (variable i1), in chunks that first prefetch the same
// chunk of the next row of `streamed` when it is not empty. Returns the opening lines; the
// loop closes with as many "}" as `*depth`.
std::string element_loop(const LoopKernel& k, const std::set<int>& streamed,
                         const std::string& pragma, const std::string& indent, int* depth) {
  if (streamed.empty()) {
    *depth = 1;
    return indent + pragma + "\n" + indent + "for (int64_t i1 = 0; i1 < R; ++i1) {\n";
  }
  *depth = 2;
  std::string src = indent + "for (int64_t c1 = 0; c1 < R; c1 += KILN_CHUNK) {\n";
  src += indent + "  const int64_t e1 = c1 + KILN_CHUNK < R ? c1 + KILN_CHUNK : R;\n";
  src += indent + "  if (i0 + 1 < rows) {\n";
  for (int p : streamed) {
    int elements_per_line =
        64 / static_cast<int>(dtype_size(k.param_dtypes[static_cast<size_t>(p)]));
    src += fmt::format(
        "{}    for (int64_t q = c1; q < e1; q += {}) KILN_PREFETCH(&p{}[(i0 + 1) * R + q]);\n",
        indent, elements_per_line, p);
  }
  src += indent + "  }\n" + indent + "  " + pragma + "\n";
  src += indent + "  for (int64_t i1 = c1; i1 < e1; ++i1) {\n";
  return src;
}

// The loop over rows. Many rows: one thread per block of rows, each phase a simd loop.
// One long row (a full reduction): the rows run in order and each phase's loop is split
// across the threads instead (a split reduction). Entering a parallel region per phase per
// row would cost more than short rows take, so the two forms are separate code.
std::string row_loop(const LoopKernel& k, const Dialect& dialect, bool split) {
  KernelWriter w(k);
  // Softmax's last pass divided every element by the row sum: a vector division costs ten
  // multiplies (AVX2), and was a fifth of a 4096-wide softmax row on 2 cores.
  w.divide_by_reciprocal();
  const CachedRowValue cached = find_cached_row_value(k);
  // Prefetching goes in the last loop that reads the row after the first has streamed it.
  const std::set<int> streamed = split ? std::set<int>{} : streamed_inputs(k);
  const size_t prefetch_loop = k.phases.size() >= 2 ? k.phases.size() - 1 : k.phases.size();
  int depth = 1;
  std::string body;
  w.push(&body, "    ");
  for (size_t p = 0; p < k.phases.size(); ++p) {
    Accumulation acc = accumulation(k.phases[p]);
    auto fill = [&](const std::string& f, const std::string& v) {
      return fmt::format(fmt::runtime(f), fmt::arg("a", fmt::format("a{}", p)),
                         fmt::arg("n", fmt::format("n{}", p)), fmt::arg("v", v));
    };
    w.line(fmt::format("{} a{} = {};", acc.type, p, acc.init));
    if (!acc.nan_flag.empty()) w.line(fill(acc.nan_flag, ""));
    // Sums and products may be reassociated (f64 accumulators keep them exact enough).
    body += element_loop(
        k, p == prefetch_loop ? streamed : std::set<int>{},
        fmt::format(fmt::runtime(split ? dialect.parallel_simd_reduction : dialect.simd_reduction),
                    fmt::arg("clauses", fill(reduction_clauses(acc, dialect), ""))),
        "    ", &depth);
    std::string loop_body;
    w.push(&loop_body, depth == 2 ? "        " : "      ");
    std::string v = w.value(k.phases[p].value);
    if (cached.phase == static_cast<int>(p))
      w.line(fmt::format("p{}[(i0 * R + i1)] = {};", cached.param, v));
    w.pop();
    body += loop_body;
    w.line((depth == 2 ? "    " : "  ") + fill(acc.update, v));
    if (depth == 2) w.line("  }");
    w.line("}");
    if (!acc.after.empty()) w.line(fill(acc.after, ""));
  }
  for (const Store& st : k.row_stores)
    w.line(fmt::format("p{}[{}] = {};", st.param, w.index(st.index, st.access),
                       store(w.value(st.value), k.param_dtypes[static_cast<size_t>(st.param)])));
  if (!k.stores.empty()) {
    body += element_loop(
        k, prefetch_loop == k.phases.size() ? streamed : std::set<int>{},
        split ? fmt::format(fmt::runtime(dialect.parallel_simd_loop), fmt::arg("n", "R"))
              : dialect.simd_loop,
        "    ", &depth);
    std::string loop_body;
    w.push(&loop_body, depth == 2 ? "        " : "      ");
    if (cached.value) w.bind(cached.value, fmt::format("p{}[(i0 * R + i1)]", cached.param));
    for (const Store& st : k.stores)
      w.line(fmt::format("p{}[{}] = {};", st.param, w.index(st.index, st.access),
                         store(w.value(st.value), k.param_dtypes[static_cast<size_t>(st.param)])));
    w.pop();
    body += loop_body;
    if (depth == 2) w.line("  }");
    w.line("}");
  }
  w.pop();
  std::string head =
      split ? ""
            : "  " + fmt::format(fmt::runtime(dialect.parallel_loop), fmt::arg("n", "rows * R")) +
                  "\n";
  return head + "  for (int64_t i0 = 0; i0 < rows; ++i0) {\n" + body + "  }\n";
}

// Column form: blocks of rows (the contiguous index) per thread, each phase's reduction
// loop outside a simd loop over the block, per-row accumulators in block-sized arrays.
std::string column_loop(const LoopKernel& k, const Dialect& dialect) {
  const char* const block = "KILN_BLOCK";  // the config's rows per block
  KernelWriter w(k);
  std::string body;
  w.push(&body, "    ");
  w.line(fmt::format("const int64_t c1 = c0 + {0} < rows ? c0 + {0} : rows;", block));
  auto simd_rows = [&](const std::function<void()>& inner, const std::string& indent) {
    w.line(dialect.simd_loop);
    w.line("for (int64_t i0 = c0; i0 < c1; ++i0) {");
    std::string* target = w.out();
    std::string loop_body;
    w.push(&loop_body, indent);
    inner();
    w.pop();
    *target += loop_body;
    w.line("}");
  };
  for (size_t p = 0; p < k.phases.size(); ++p) {
    Accumulation acc = accumulation(k.phases[p]);
    std::string a = fmt::format("a{}[i0 - c0]", p), n = fmt::format("n{}[i0 - c0]", p);
    auto fill = [&](const std::string& f, const std::string& v) {
      return fmt::format(fmt::runtime(f), fmt::arg("a", a), fmt::arg("n", n), fmt::arg("v", v));
    };
    w.line(fmt::format("{} a{}[{}];", acc.type, p, block));
    if (!acc.nan_flag.empty()) w.line(fmt::format("int n{}[{}];", p, block));
    simd_rows(
        [&] {
          w.line(fmt::format("{} = {};", a, acc.init));
          if (!acc.nan_flag.empty()) w.line(n + " = 0;");
        },
        "      ");
    w.line("for (int64_t i1 = 0; i1 < R; ++i1) {");
    std::string reduce_body;
    w.push(&reduce_body, "      ");
    w.line(dialect.simd_loop);
    w.line("for (int64_t i0 = c0; i0 < c1; ++i0) {");
    std::string inner;
    w.push(&inner, "        ");
    std::string v = w.value(k.phases[p].value);
    w.line(fill(acc.update, v));
    w.pop();
    reduce_body += inner;
    w.line("}");
    w.pop();
    body += reduce_body;
    w.line("}");
    if (!acc.after.empty()) simd_rows([&] { w.line(fill(acc.after, "")); }, "      ");
  }
  if (!k.row_stores.empty()) {
    simd_rows(
        [&] {
          for (const Store& st : k.row_stores)
            w.line(fmt::format(
                "p{}[{}] = {};", st.param, w.index(st.index, st.access),
                store(w.value(st.value), k.param_dtypes[static_cast<size_t>(st.param)])));
        },
        "      ");
  }
  if (!k.stores.empty()) {
    w.line("for (int64_t i1 = 0; i1 < R; ++i1) {");
    std::string outer;
    w.push(&outer, "      ");
    simd_rows(
        [&] {
          for (const Store& st : k.stores)
            w.line(fmt::format(
                "p{}[{}] = {};", st.param, w.index(st.index, st.access),
                store(w.value(st.value), k.param_dtypes[static_cast<size_t>(st.param)])));
        },
        "        ");
    w.pop();
    body += outer;
    w.line("}");
  }
  w.pop();
  return "  " + fmt::format(fmt::runtime(dialect.parallel_loop), fmt::arg("n", "rows * R")) + "\n" +
         fmt::format("  for (int64_t c0 = 0; c0 < rows; c0 += {}) {{\n", block) + body + "  }\n";
}

}  // namespace kiln::emit
