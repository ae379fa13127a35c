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

// The row loads of a row kernel: loads of streamed params at the row's own element.
void collect_row_load_exprs(const ExprPtr& e, std::vector<const Expr*>* out) {
  visit_nodes({e.get()}, [&](const Expr& x) {
    if (x.kind() == Expr::Kind::Load && x.load().access == Access::row_element) out->push_back(&x);
  });
}

namespace {

// Names of distinct loads: the same parameter at the same index (structurally) is one load.
struct LoadNames {
  std::vector<std::pair<const Expr*, std::string>> names;
  const std::string* find(const Expr& e) const {
    for (const auto& [load, name] : names)
      if (load->load().param == e.load().param && same_index(load->load().index, e.load().index))
        return &name;
    return nullptr;
  }
  void add(const Expr& e, std::string name) { names.emplace_back(&e, std::move(name)); }
  size_t size() const { return names.size(); }
};

}  // namespace

void collect_loads(const ExprPtr& e, std::vector<const Expr*>* out) {
  visit_nodes({e.get()}, [&](const Expr& x) {
    if (x.kind() == Expr::Kind::Load) out->push_back(&x);
  });
}

// GPU reductions, as the kernel's Schedule lays them out. Row form (row_per_block): rows
// over blocks (grid-striding), each
// phase's elements over the block's threads, the partial accumulators combined first within
// each warp (shuffles), then across warps through shared memory, every thread folding the
// warp partials in the same order (deterministic). Register-held rows (HeldRow) are loaded
// once into r<n>[j]; their loops run over the thread's runs, reading and writing each run of
// a row-contiguous buffer as one vector (kiln_ld/kiln_st, element by element when a base
// pointer is misaligned).
// Column form (reduced dims lead): a block takes 32 consecutive rows, one a lane, so that a
// warp reads 32 neighbouring addresses (coalesced); each warp of the block reduces a slice
// of the reduced elements (every slices-th), and the slices' partials are folded in slice
// order through shared memory by every thread (deterministic, and each has the result).
std::string block_row_loop(const LoopKernel& k) {
  LoopKernel scalar_form = k;
  scalar_form.columns = false;  // accumulators are scalars in both GPU forms
  KernelWriter w(scalar_form);
  w.divide_by_reciprocal();
  std::string body;
  w.push(&body, "    ");
  const Schedule& s = k.schedule;
  const bool per_block = s.row_per_block;
  const HeldRow layout = s.held;
  const int64_t held = layout.elements();
  const int width = layout.width;
  const int threads = s.block_threads;
  const bool split = s.split_blocks;
  const bool whole_runs = s.whole_runs;  // every run inside the row: no bounds test at all
  std::vector<const Expr*> row_loads;
  if (held > 0) {
    for (const ReducePhase& ph : k.phases) collect_row_load_exprs(ph.value, &row_loads);
    for (const Store& st : k.stores) collect_row_load_exprs(st.value, &row_loads);
  }
  // A run's base pointer for an access at `index_text` when it is contiguous along the row
  // (the row's own element, or a vector indexed by the element alone), else "".
  std::set<int> vector_params;  // their base pointers' alignment picks kiln_ld's path
  auto run_pointer = [&](int param, const std::string& index_text) -> std::string {
    if (index_text != kRowElementIndex && index_text != "i1") return "";
    vector_params.insert(param);
    return fmt::format("{} + {}kiln_o", w.param(param), index_text == "i1" ? "" : "kiln_row + ");
  };
  auto vec_type = [&](int param) {
    return fmt::format("{}, {}", type_names(k.param_dtypes[static_cast<size_t>(param)]).storage,
                       width);
  };
  // One register array per distinct row load (the same parameter at the same index,
  // compared structurally), filled up front, in the order of first use.
  LoadNames held_names;
  // Phase values a later loop reads again (softmax's exp(x - max)), kept in registers.
  std::vector<std::pair<const Expr*, std::string>> cached_values;
  auto read_later = [&](size_t phase) {
    const Expr* v = k.phases[phase].value.get();
    for (size_t q = phase + 1; q < k.phases.size(); ++q)
      if (contains(k.phases[q].value, v)) return true;
    for (const Store& st : k.stores)
      if (contains(st.value, v)) return true;
    return false;
  };
  // Register-held loops: over the thread's runs, and within a run over its elements (j: the
  // element's register slot, i1: its index in the row). `values` are the expressions the loop
  // computes: their run-contiguous loads are read as one vector a run.
  // The loop over the thread's runs, c, and the offset of run c in the row.
  auto open_run_loop = [&] {
    w.line(fmt::format("#pragma unroll\n    for (int c = 0; c < {}; ++c) {{", layout.chunks));
    w.line(fmt::format("  const int kiln_o = (c * {} + (int)threadIdx.x) * {};", threads, width));
  };
  auto open_runs = [&](std::string* loop_body, const std::vector<ExprPtr>& values,
                       const std::vector<std::string>& declarations) {
    open_run_loop();
    if (!whole_runs) w.line("  if (kiln_o < R) {");
    const std::string indent(whole_runs ? 6 : 8, ' ');
    w.push(loop_body, indent);
    std::vector<const Expr*> loads;
    for (const ExprPtr& v : values) collect_loads(v, &loads);
    LoadNames vectors;  // a load's run vector
    for (const Expr* e : loads) {
      if (held_names.find(*e) || vectors.find(*e)) continue;
      const Expr::Load& l = e->load();
      const std::string base = run_pointer(l.param, w.index(l.index, l.access));
      if (base.empty()) continue;
      const std::string name = fmt::format("kiln_l{}", vectors.size());
      vectors.add(*e, name);
      w.line(fmt::format("const kiln_vec<{0}> {1} = kiln_ld<{0}>({2}, kiln_aligned);",
                         vec_type(e->load().param), name, base));
    }
    for (const std::string& text : declarations) w.line(text);
    w.line(fmt::format("#pragma unroll\n{}for (int e = 0; e < {}; ++e) {{", indent, width));
    w.push(loop_body, indent + "  ");
    w.line(fmt::format("const int j = c * {} + e;", width));
    w.line("const int64_t i1 = kiln_o + e;");
    w.line("(void)j; (void)i1;");
    for (const Expr* e : loads) {
      if (const std::string* found = vectors.find(*e))
        w.bind(e, load_value(*found + ".v[e]", e->dtype));
    }
    for (const Expr* e : row_loads) w.bind(e, *held_names.find(*e) + "[j]");
    for (const auto& [e, name] : cached_values) w.bind(e, name + "[j]");
  };
  auto close_runs = [&](std::string* loop_body, const std::vector<std::string>& after_elements) {
    w.pop();
    w.line("}");
    for (const std::string& text : after_elements) w.line(text);
    w.pop();
    body += *loop_body;
    if (!whole_runs) w.line("  }");
    w.line("}");
  };
  auto open_elements = [&](std::string* loop_body, const std::vector<ExprPtr>& values) {
    if (held > 0) return open_runs(loop_body, values, {});
    w.line(split ? "for (int64_t i1 = kiln_lo + threadIdx.x; i1 < kiln_hi; i1 += blockDim.x) {"
           : per_block ? "for (int64_t i1 = threadIdx.x; i1 < R; i1 += blockDim.x) {"
                       : "for (int64_t i1 = kiln_slice; kiln_in && i1 < R; i1 += kiln_slices) {");
    w.push(loop_body, "      ");
  };
  auto close_elements = [&](std::string* loop_body) {
    if (held > 0) return close_runs(loop_body, {});
    w.pop();
    body += *loop_body;
    w.line("}");
  };
  if (held > 0) {
    w.line("const int64_t kiln_row = i0 * R;");
    std::string fill;
    for (const Expr* e : row_loads) {
      if (held_names.find(*e)) continue;
      const std::string name = fmt::format("r{}", held_names.size());
      held_names.add(*e, name);
      w.line(fmt::format("{} {}[{}];", type_names(e->dtype).compute, name, held));
      const std::string run = fmt::format("kiln_h{}", held_names.size() - 1);
      fill += fmt::format("        const kiln_vec<{0}> {1} = kiln_ld<{0}>({2}, kiln_aligned);\n",
                          vec_type(e->load().param), run,
                          run_pointer(e->load().param, kRowElementIndex));
      fill += fmt::format(
          "        #pragma unroll\n        for (int e = 0; e < {}; ++e) {}[c * {} + e] = {};\n",
          width, name, width, load_value(run + ".v[e]", e->dtype));
    }
    open_run_loop();
    if (whole_runs) {
      w.line("  {");
    } else {
      w.line("  if (kiln_o >= R) {");
      for (const auto& [load, name] : held_names.names)
        w.line(fmt::format("    for (int e = 0; e < {}; ++e) {}[c * {} + e] = 0;", width, name,
                           width));
      w.line("  } else {");
    }
    body += fill;
    w.line("} }");
  }
  // Within each warp by shuffles, then every warp reduces the warps' partials (padded with
  // the identity) the same way: a fixed order, so the result is deterministic.
  auto block_combine = [&](const std::string& var, const std::string& type,
                           const std::string& combine, const std::string& identity) {
    auto fold = [&](const std::string& x, const std::string& y) {
      return fmt::format(fmt::runtime(combine), fmt::arg("x", x), fmt::arg("y", y));
    };
    const std::string shuffle = fmt::format(
        "for (int o = 16; o > 0; o >>= 1) {{ const {} y = __shfl_xor_sync(0xffffffffu, {}, o); {} "
        "= {}; }}",
        type, var, var, fold(var, "y"));
    w.line(shuffle);
    w.line(fmt::format("{{ __shared__ {} s_{}[{}];", type, var, threads / 32));
    w.line(fmt::format("  if ((threadIdx.x & 31) == 0) s_{}[threadIdx.x >> 5] = {};", var, var));
    w.line("  __syncthreads();");
    w.line(fmt::format(
        "  {0} = (threadIdx.x & 31) < (blockDim.x >> 5) ? s_{0}[threadIdx.x & 31] : ({1})({2});",
        var, type, identity));
    w.line("  " + shuffle);
    w.line("  __syncthreads(); }");
  };
  // Column form: the slices' partials, folded in slice order by every thread.
  auto column_combine = [&](const std::string& var, const std::string& type,
                            const std::string& combine) {
    w.line(fmt::format("{{ __shared__ {} s_{}[{}][32];", type, var, threads / 32));
    w.line(fmt::format("  s_{}[kiln_slice][threadIdx.x & 31] = {};", var, var));
    w.line("  __syncthreads();");
    w.line(fmt::format("  {0} = s_{0}[0][threadIdx.x & 31];", var));
    w.line(fmt::format("  for (int q = 1; q < kiln_slices; ++q) {} = {};", var,
                       fmt::format(fmt::runtime(combine), fmt::arg("x", var),
                                   fmt::arg("y", fmt::format("s_{}[q][threadIdx.x & 31]", var)))));
    w.line("  __syncthreads(); }");
  };
  for (size_t p = 0; p < k.phases.size(); ++p) {
    Accumulation acc = gpu_accumulation(k.phases[p]);
    const std::string a = fmt::format("a{}", p), n = fmt::format("n{}", p);
    auto fill = [&](const std::string& f, const std::string& v) {
      return fmt::format(fmt::runtime(f), fmt::arg("a", a), fmt::arg("n", n), fmt::arg("v", v));
    };
    const ExprPtr& value = k.phases[p].value;
    // A thread's few register-held elements are summed in f32 (f32 values), the block's
    // partials in f64: the f64 conversion and add per element were a fifth of the work.
    const bool thread_sum_in_float = held > 0 && k.phases[p].op == Op::sum &&
                                     std::string(type_names(value->dtype).compute) == "float" &&
                                     acc.type == "double";
    if (thread_sum_in_float) {
      w.line(fmt::format("float {}_t = 0.0f;", a));
      acc.update = "{a}_t += {v};";
    } else {
      w.line(fmt::format("{} {} = {};", acc.type, a, acc.init));
    }
    if (!acc.nan_flag.empty()) w.line(fill(acc.nan_flag, ""));
    const bool cache_value = held > 0 && has_transcendental(value) && read_later(p);
    const std::string cached = fmt::format("c{}", p);
    if (cache_value)
      w.line(fmt::format("{} {}[{}];", type_names(value->dtype).compute, cached, held));
    std::string loop_body;
    open_elements(&loop_body, {value});
    const std::string v = w.value(value);
    if (cache_value) w.line(fmt::format("{}[j] = {};", cached, v));
    w.line(fill(acc.update, v));
    close_elements(&loop_body);
    if (thread_sum_in_float) w.line(fmt::format("double {0} = (double){0}_t;", a));
    if (cache_value) cached_values.emplace_back(value.get(), cached);
    if (per_block) {
      block_combine(a, acc.type, acc.combine, acc.init);
      if (!acc.nan_flag.empty()) block_combine(n, "int", "({x} | {y})", "0");
    } else {
      column_combine(a, acc.type, acc.combine);
      if (!acc.nan_flag.empty()) column_combine(n, "int", "({x} | {y})");
    }
    if (split)  // this block's partial of phase p: slot (row, part, phase), 8 bytes each
      w.line(
          fmt::format("if (kiln_split > 1 && threadIdx.x == 0) *({}*)(kiln_partials + 8 * ((i0 * "
                      "kiln_split + kiln_part) * {} + {})) = {};",
                      acc.type, k.phases.size(), p, a));
    if (!acc.after.empty()) w.line(fill(acc.after, ""));
  }
  if (split) {
    // The row's last block to finish (the atomic ticket) folds every phase's partials in
    // part order, deterministically, and resets the row's counter for the next launch.
    w.line("if (kiln_split > 1) {");
    w.line("  __shared__ int kiln_last;");
    w.line("  if (threadIdx.x == 0) {");
    w.line("    __threadfence();");
    w.line("    kiln_last = atomicAdd(&kiln_counters[i0], 1u) == (unsigned)(kiln_split - 1);");
    w.line("  }");
    w.line("  __syncthreads();");
    w.line("  if (!kiln_last) continue;");
    w.line("  if (threadIdx.x == 0) {");
    w.line("    __threadfence();");
    for (size_t p = 0; p < k.phases.size(); ++p) {
      Accumulation acc = gpu_accumulation(k.phases[p]);
      const std::string a = fmt::format("a{}", p);
      // Slots are 8 bytes whatever the accumulator's type: (row, part, phase) in that order.
      const std::string slot = fmt::format(
          "*(const volatile {}*)(kiln_partials + 8 * ((i0 * kiln_split + q) * {} + {}))", acc.type,
          k.phases.size(), p);
      w.line(fmt::format(
          "    {} = *(const volatile {}*)(kiln_partials + 8 * (i0 * kiln_split * {} + {}));", a,
          acc.type, k.phases.size(), p));
      w.line(fmt::format(
          "    for (int64_t q = 1; q < kiln_split; ++q) {} = {};", a,
          fmt::format(fmt::runtime(acc.combine), fmt::arg("x", a), fmt::arg("y", slot))));
    }
    w.line("    kiln_counters[i0] = 0;");
    w.line("  }");
    w.line("}");
  }
  auto stores = [&](const std::vector<Store>& list) {
    for (const Store& st : list)
      w.line(fmt::format("p{}[{}] = {};", st.param, w.index(st.index, st.access),
                         store(w.value(st.value), k.param_dtypes[static_cast<size_t>(st.param)])));
  };
  if (!k.row_stores.empty()) {
    w.line(per_block ? "if (threadIdx.x == 0) {" : "if (kiln_slice == 0 && kiln_in) {");
    std::string row_body;
    w.push(&row_body, "      ");
    stores(k.row_stores);
    w.pop();
    body += row_body;
    w.line("}");
  }
  if (!k.stores.empty() && held == 0) {
    std::string loop_body;
    open_elements(&loop_body, {});
    stores(k.stores);
    close_elements(&loop_body);
  } else if (!k.stores.empty()) {
    // Each run of a row-contiguous store is gathered into a vector and written at once.
    std::vector<ExprPtr> values;
    std::vector<std::string> declarations, writes, vector_names;
    for (size_t s = 0; s < k.stores.size(); ++s) {
      const Store& st = k.stores[s];
      values.push_back(st.value);
      const std::string base = run_pointer(st.param, w.index(st.index, st.access));
      vector_names.push_back(base.empty() ? "" : fmt::format("kiln_s{}", s));
      if (base.empty()) continue;
      declarations.push_back(
          fmt::format("kiln_vec<{}> {};", vec_type(st.param), vector_names.back()));
      writes.push_back(fmt::format("kiln_st<{}>({}, {}, kiln_aligned);", vec_type(st.param), base,
                                   vector_names.back()));
    }
    std::string loop_body;
    open_runs(&loop_body, values, declarations);
    for (size_t s = 0; s < k.stores.size(); ++s) {
      const Store& st = k.stores[s];
      const std::string value =
          store(w.value(st.value), k.param_dtypes[static_cast<size_t>(st.param)]);
      if (vector_names[s].empty())
        w.line(fmt::format("{}[{}] = {};", w.param(st.param), w.index(st.index, st.access), value));
      else
        w.line(fmt::format("{}.v[e] = {};", vector_names[s], value));
    }
    close_runs(&loop_body, writes);
  }
  w.pop();
  if (split)
    return fmt::format(
               "  const int64_t kiln_split = (int64_t)gridDim.x >= rows ? (int64_t)gridDim.x / "
               "rows : 1;\n"
               "  unsigned int* kiln_counters = (unsigned int*)buffers[{0}];\n"
               "  char* kiln_partials = buffers[{1}];\n"
               "  for (int64_t kiln_b = blockIdx.x; kiln_b < rows * kiln_split; kiln_b += "
               "gridDim.x) {{\n"
               "    const int64_t i0 = kiln_b / kiln_split, kiln_part = kiln_b % kiln_split;\n"
               "    const int64_t kiln_lo = R * kiln_part / kiln_split, kiln_hi = R * (kiln_part + "
               "1) / kiln_split;\n",
               k.params.size(), k.params.size() + 1) +
           body + "  }\n";
  // Vectors need each base pointer aligned to a run's bytes (rows start at multiples of
  // the run: the width divides the row); views at odd offsets take kiln_ld's scalar path.
  // Rows read only through broadcasts have no vectors and no test.
  std::vector<std::string> misaligned;
  for (int param : vector_params)
    misaligned.push_back(
        fmt::format("((unsigned long long){} % {})", w.param(param),
                    width * dtype_size(k.param_dtypes[static_cast<size_t>(param)])));
  const std::string alignment =
      misaligned.empty()
          ? ""
          : fmt::format("  const bool kiln_aligned = ({}) == 0;\n", fmt::join(misaligned, " | "));
  return per_block ? alignment + "  for (int64_t i0 = blockIdx.x; i0 < rows; i0 += gridDim.x) {\n" +
                         body + "  }\n"
                   : fmt::format("  const int kiln_slices = {}, kiln_slice = threadIdx.x >> 5;\n",
                                 threads / 32) +
                         "  for (int64_t kiln_c = blockIdx.x * (int64_t)32; kiln_c < rows;"
                         " kiln_c += (int64_t)gridDim.x * 32) {\n"
                         "    const int64_t i0 = kiln_c + (threadIdx.x & 31);\n"
                         "    const bool kiln_in = i0 < rows;\n" +
                         body + "  }\n";
}

}  // namespace kiln::emit
