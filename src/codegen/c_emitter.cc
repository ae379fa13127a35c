#include "codegen/c_emitter.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <set>
#include <string_view>

#include "codegen/kernel_writer.h"
#include "codegen/row_kernels.h"
#include "graph/infer.h"
#include "kiln/error.h"
#include "support/philox.h"

namespace kiln {

using namespace emit;

namespace {

std::string emit_row_kernel(const LoopKernel& k, int num_symbols, const Dialect& dialect) {
  std::vector<std::string> kept, reduced;
  for (size_t d = 0; d < k.shape.size(); ++d) {
    bool r = std::find(k.reduced_dims.begin(), k.reduced_dims.end(), static_cast<int64_t>(d)) !=
             k.reduced_dims.end();
    (r ? reduced : kept).push_back(render_index(index_dim(k.shape[d])));
  }
  const Schedule& s = k.schedule;
  const std::string bounds =
      s.min_blocks_per_sm > 0
          ? fmt::format("__launch_bounds__({}, {}) ", s.block_threads, s.min_blocks_per_sm)
          : "";
  std::string src = kernel_signature(dialect_kernel_name(k.name, dialect), dialect, bounds);
  src += params_and_sizes(k, num_symbols, dialect);
  src += fmt::format("  const int64_t rows = {};\n  const int64_t R = {};\n", product(kept),
                     product(reduced));
  if (s.device == Device::cuda) return src + block_row_loop(k) + "}\n";
  if (k.columns) return src + column_loop(k, dialect) + "}\n";
  switch (s.split_row) {
    case Schedule::RowSplit::never:
    case Schedule::RowSplit::always:
      return src + row_loop(k, dialect, s.split_row == Schedule::RowSplit::always) + "}\n";
    case Schedule::RowSplit::when_long:
      break;
  }
  src += fmt::format("  if (rows < 2 && R >= {}) {{\n", kLongRow) + row_loop(k, dialect, true) +
         "  } else {\n" + row_loop(k, dialect, false) + "  }\n";
  return src + "}\n";
}

}  // namespace

namespace {

std::vector<const Expr*> store_values(const std::vector<Store>& stores) {
  std::vector<const Expr*> roots;
  for (const Store& st : stores) roots.push_back(st.value.get());
  return roots;
}

// The random draws (Apply nodes of rand and randn) of the stored values, each once, in a
// fixed order.
std::vector<const Expr*> draws_of(const std::vector<Store>& stores) {
  std::vector<const Expr*> out;
  visit_nodes(store_values(stores), [&](const Expr& x) {
    if (x.kind() == Expr::Kind::Apply && op_info(x.apply().op).rule == OpRule::Random)
      out.push_back(&x);
  });
  return out;
}

// How many consecutive elements of draw `d` one Philox call serves, as a shift: the
// generator's own kiln_philox_shift (support/philox.h), so the codegen cannot disagree.
int philox_shift(const Expr& d) {
  return kiln_philox_shift(d.apply().op == Op::randn, is_double(d.dtype));
}

// The draws of a vector loop's `width` consecutive elements share Philox calls (support/
// philox.inc: element e takes call e >> shift): each draw's calls for the thread's run are
// made once before the lanes (kiln_v is a multiple of the width), and each lane takes its
// words from them, instead of every lane repeating its call.
void share_draw_calls(KernelWriter& w, const LoopKernel& k, int width) {
  const std::vector<const Expr*> draws = draws_of(k.stores);
  for (size_t n = 0; n < draws.size(); ++n) {
    const Expr::Apply& a = draws[n]->apply();
    const int shift = philox_shift(*draws[n]);
    const int calls = std::max(1, width >> shift);
    const std::string seed = w.value(a.args[0]), offset = w.value(a.args[1]);
    w.line(fmt::format("kiln_philox_t kiln_r{}[{}];", n, calls));
    for (int c = 0; c < calls; ++c)
      w.line(
          fmt::format("kiln_r{0}[{1}] = kiln_philox((uint64_t){2}, ((uint64_t)kiln_v >> {3}) + "
                      "{1}, (uint64_t){4} + (uint64_t)INT64_C({5}));",
                      n, c, seed, shift, offset, a.attrs.get_int("draw")));
  }
}

// Binds each draw, in the lane loop's scope, to its lane's words of the shared calls.
void bind_draw_lanes(KernelWriter& w, const LoopKernel& k) {
  const std::vector<const Expr*> draws = draws_of(k.stores);
  for (size_t n = 0; n < draws.size(); ++n) {
    const Expr& d = *draws[n];
    const bool normal = d.apply().op == Op::randn, wide = is_double(d.dtype);
    const int shift = philox_shift(d);
    w.bind(&d,
           convert(fmt::format("{}(kiln_r{}[kiln_lane >> {}], (uint64_t)kiln_lane, {})",
                               normal ? "kiln_randn_of" : "kiln_rand_of", n, shift, wide ? 1 : 0),
                   DType::f64, d.dtype));
  }
}

// A GPU flat loop whose threads take `width` consecutive elements each, loaded and stored as
// one aligned vector per buffer (kiln_vec<T, width>: 16 bytes for f32), when every buffer is
// aligned to 16 bytes; the remainder, and every element of unaligned buffers (views at odd
// offsets), take the plain grid-stride loop (Schedule::vector_width).
std::string vector_flat_loop(const LoopKernel& k, int base, int width,
                             const std::string& plain_body) {
  KernelWriter w(k, base);
  std::vector<const Expr*> loads;
  for (const Store& st : k.stores) collect_loads(st.value, &loads);
  // Loads at a constant index stay scalar (the lanes share the element).
  loads.erase(std::remove_if(loads.begin(), loads.end(),
                             [](const Expr* e) { return is_constant_load(*e); }),
              loads.end());
  std::set<int> vector_params;
  for (const Store& st : k.stores) vector_params.insert(st.param);
  for (const Expr* e : loads) vector_params.insert(e->load().param);
  std::vector<std::string> pointers;
  for (int p : vector_params) pointers.push_back(fmt::format("(unsigned long long){}", w.param(p)));
  std::string body;
  w.push(&body, "      ");
  std::set<int> loaded;
  for (const Expr* e : loads) {
    const int param = e->load().param;
    if (!loaded.insert(param).second) continue;
    const char* t = type_names(k.param_dtypes[static_cast<size_t>(param)]).storage;
    w.line(fmt::format(
        "const kiln_vec<{0}, {1}> kiln_l{2} = *(const kiln_vec<{0}, {1}>*)({3} + kiln_v);", t,
        width, param, w.param(param)));
  }
  auto out_type = [&](const Store& st) {
    return type_names(k.param_dtypes[static_cast<size_t>(st.param)]).storage;
  };
  share_draw_calls(w, k, width);
  for (const Store& st : k.stores)
    w.line(fmt::format("kiln_vec<{}, {}> kiln_s{};", out_type(st), width, st.param));
  // The lanes as an unrolled loop, not written out: the source stays small (NVRTC's front
  // end took 0.67 s for a 500-op chain written out four times, most of a cold compile).
  w.line(fmt::format(
      "#pragma unroll\n      for (int kiln_lane = 0; kiln_lane < {}; ++kiln_lane) {{", width));
  std::string lane_body;
  w.push(&lane_body, "        ");
  for (const Expr* e : loads)
    w.bind(e, load_value(fmt::format("kiln_l{}.v[kiln_lane]", e->load().param), e->dtype));
  bind_draw_lanes(w, k);
  // A position outside the draws (an arange): the lane's element.
  if (std::any_of(k.stores.begin(), k.stores.end(),
                  [](const Store& st) { return reads_position(st.value); }))
    w.line("const int64_t i0 = kiln_v + kiln_lane;\n        (void)i0;");
  for (const Store& st : k.stores)
    w.line(fmt::format("kiln_s{}.v[kiln_lane] = {};", st.param,
                       store(w.value(st.value), k.param_dtypes[static_cast<size_t>(st.param)])));
  w.pop();
  body += lane_body;
  w.line("}");
  for (const Store& st : k.stores)
    w.line(fmt::format("*(kiln_vec<{}, {}>*)({} + kiln_v) = kiln_s{};", out_type(st), width,
                       w.param(st.param), st.param));
  w.pop();
  std::string src =
      "  const int64_t kiln_tid = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;\n"
      "  const int64_t kiln_stride = (int64_t)gridDim.x * blockDim.x;\n";
  src += fmt::format("  const int64_t kiln_vector_end = (({}) & 15) == 0 ? n / {} * {} : 0;\n",
                     fmt::join(pointers, " | "), width, width);
  src += fmt::format(
      "  for (int64_t kiln_v = kiln_tid * {0}; kiln_v < kiln_vector_end; kiln_v += kiln_stride * "
      "{0}) {{\n",
      width);
  src += body + "  }\n";
  src += "  for (int64_t i0 = kiln_vector_end + kiln_tid; i0 < n; i0 += kiln_stride) {\n" +
         plain_body + "  }\n";
  return src;
}

std::string pointwise_loops(const LoopKernel& k, int base, const Dialect& dialect) {
  std::vector<std::string> extents;
  for (const Dim& d : k.shape) extents.push_back(render_index(index_dim(d)));
  KernelWriter w(k, base);
  std::string body;
  std::string indent(2 * (k.flat ? 1 : k.shape.size()) + 4, ' ');
  w.push(&body, indent);
  if (k.stores.size() == 1) {
    const Store& st = k.stores[0];
    w.line(fmt::format("{}[{}] = {};", w.param(st.param), w.index(st.index, st.access),
                       store(w.value(st.value), k.param_dtypes[static_cast<size_t>(st.param)])));
  } else {
    // Every value before any store: an output may be written over an input that a later
    // value reads (params_and_sizes).
    for (const Store& st : k.stores) {
      const DType dtype = k.param_dtypes[static_cast<size_t>(st.param)];
      w.line(fmt::format("const {} kiln_o{} = {};", type_names(dtype).storage, st.param,
                         store(w.value(st.value), dtype)));
    }
    for (const Store& st : k.stores)
      w.line(fmt::format("{}[{}] = kiln_o{};", w.param(st.param), w.index(st.index, st.access),
                         st.param));
  }
  w.pop();
  std::string src;
  if (k.schedule.vector_width > 0)
    return fmt::format("  const int64_t n = {};\n", product(extents)) +
           vector_flat_loop(k, base, k.schedule.vector_width, body);
  if (k.flat || k.shape.empty()) {
    src += fmt::format("  const int64_t n = {};\n", product(extents));
    return src + "  " +
           fmt::format(fmt::runtime(dialect.flat_loop), fmt::arg("n", "n"), fmt::arg("i", "i0")) +
           "\n" + body + "  }\n";
  }
  if (!k.schedule.nested_loops) {
    // One flat loop over every element; each loop variable taken from the flat index.
    src += fmt::format("  const int64_t n = {};\n", product(extents));
    src += "  " +
           fmt::format(fmt::runtime(dialect.flat_loop), fmt::arg("n", "n"), fmt::arg("i", "flat")) +
           "\n";
    src += "    int64_t rest = flat;\n";
    for (size_t d = k.shape.size(); d-- > 0;) {
      if (d == 0) {
        src += "    const int64_t i0 = rest;\n";
      } else {
        src += fmt::format("    const int64_t i{0} = rest % ({1});\n    rest /= ({1});\n", d,
                           extents[d]);
      }
    }
    return src + body + "  }\n";
  }
  std::string total = product(extents);
  std::string pad = "  ";
  for (size_t d = 0; d < k.shape.size(); ++d) {
    const char* pragma = d == 0 && d + 1 == k.shape.size() ? dialect.parallel_simd_loop
                         : d == 0                          ? dialect.parallel_loop
                         : d + 1 == k.shape.size()         ? dialect.simd_loop
                                                           : nullptr;
    if (pragma) src += pad + fmt::format(fmt::runtime(pragma), fmt::arg("n", total)) + "\n";
    src += pad + fmt::format("for (int64_t i{0} = 0; i{0} < {1}; ++i{0}) {{\n", d, extents[d]);
    pad += "  ";
  }
  src += body;
  for (size_t d = k.shape.size(); d-- > 0;) {
    pad.resize(pad.size() - 2);
    src += pad + "}\n";
  }
  return src;
}

}  // namespace

namespace {

// A foreach kernel whose parts differ only in their element counts (the same flat ops over
// tensors of the same dtypes: an optimizer's parameters) runs one loop body once per part,
// over that part's buffers and count: the source, and so the compile, stays the size of one
// part however many parameters there are (the MLP's Adam step: NVRTC 558 -> 216 ms, both
// measured as a fresh H200 machine's first process). Empty when the parts differ otherwise.
std::string shared_foreach_loop(const LoopKernel& k, int num_symbols, const Dialect& dialect) {
  const std::string count_prefix = "  const int64_t n = ";
  const size_t params = k.parts.front().params.size();
  std::string body;
  std::vector<std::string> counts;
  for (const LoopKernel& part : k.parts) {
    if (part.params.size() != params || !(part.flat || part.shape.empty())) return "";
    std::string text = pointwise_loops(part, 0, dialect);
    const size_t end = text.find(";\n");
    if (text.rfind(count_prefix, 0) != 0 || end == std::string::npos) return "";
    counts.push_back(text.substr(count_prefix.size(), end - count_prefix.size()));
    text = param_declarations(part, dialect, "kiln_buffers") + text.substr(end + 2);
    if (body.empty()) body = text;
    if (text != body) return "";
  }
  std::string src = size_declarations(num_symbols);
  src += fmt::format("  const int64_t kiln_counts[{}] = {{{}}};\n", counts.size(),
                     fmt::join(counts, ", "));
  src += fmt::format("  for (int kiln_part = 0; kiln_part < {}; ++kiln_part) {{\n", counts.size());
  src += fmt::format("    char* const* kiln_buffers = buffers + kiln_part * {};\n", params);
  src += "    const int64_t n = kiln_counts[kiln_part];\n";
  // The part's lines, one level deeper.
  std::string indented;
  for (size_t at = 0; at < body.size();) {
    const size_t end = std::min(body.find('\n', at), body.size() - 1);
    indented += "  " + body.substr(at, end - at + 1);
    at = end + 1;
  }
  return src + indented + "  }\n";
}

}  // namespace

std::string emit_kernel(const LoopKernel& k, int num_symbols, const Dialect& dialect) {
  if (!k.schedule.decided || k.schedule.device != dialect.device)
    throw CompileError(fmt::format("{} codegen: kernel {} is not scheduled for {}", dialect.name,
                                   k.name, device_name(dialect.device)));
  if (k.kind == LoopKernel::Kind::Row) return emit_row_kernel(k, num_symbols, dialect);
  std::string src = kernel_signature(dialect_kernel_name(k.name, dialect), dialect);
  if (k.kind == LoopKernel::Kind::Foreach) {
    if (std::string shared = shared_foreach_loop(k, num_symbols, dialect); !shared.empty())
      return src + shared + "}\n";
  }
  src += params_and_sizes(k, num_symbols, dialect);
  if (k.kind == LoopKernel::Kind::Pointwise) return src + pointwise_loops(k, 0, dialect) + "}\n";
  int base = 0;
  for (const LoopKernel& part : k.parts) {
    src += "  {\n" + pointwise_loops(part, base, dialect) + "  }\n";
    base += static_cast<int>(part.params.size());
  }
  return src + "}\n";
}

namespace {

// The plain KILN_<FIELD> macros of a config: every field but THREADS and VEC (which become
// clauses and attributes), with CHUNK, BLOCK and GRAIN always defined.
KernelConfig config_macros(const KernelConfig& config) {
  KernelConfig macros{{"CHUNK", 256}, {"BLOCK", 256}, {"GRAIN", kDefaultGrain}};
  for (const auto& [field, v] : config)
    if (field != "THREADS" && field != "VEC") macros[field] = v;
  return macros;
}

}  // namespace

std::string config_prologue(const std::string& kernel_name, const KernelConfig& config) {
  auto value = [&](const char* field, int64_t fallback) {
    auto it = config.find(field);
    return it == config.end() ? fallback : it->second;
  };
  std::string src = fmt::format("/* config of {}: {} */\n", kernel_name, config_text(config));
  int64_t threads = value("THREADS", 0), vec = value("VEC", 0);
  // A tuned thread count is an upper bound: set_num_threads (the caller's OpenMP limit)
  // lowers it.
  src +=
      threads > 0
          ? fmt::format("#define KILN_NUM_THREADS num_threads(KILN_THREADS_AT_MOST({}))\n", threads)
          : "#define KILN_NUM_THREADS\n";
  src += vec > 0 ? fmt::format("#define KILN_VECTOR_ATTR KILN_VECTOR_WIDTH({})\n", vec)
                 : "#define KILN_VECTOR_ATTR\n";
  for (const auto& [field, v] : config_macros(config))
    src += fmt::format("#define KILN_{} {}\n", field, v);
  return src;
}

std::string config_epilogue(const KernelConfig& config) {
  std::string src = "#undef KILN_NUM_THREADS\n#undef KILN_VECTOR_ATTR\n";
  for (const auto& [field, v] : config_macros(config))
    src += fmt::format("#undef KILN_{}\n", field);
  return src;
}

std::string emit_translation_unit(const std::vector<KernelSource>& kernels,
                                  const Dialect& dialect) {
  std::string src = fmt::format("/* kiln {} kernels:", dialect.name);
  for (const KernelSource& k : kernels) src += " " + k.name;
  src += fmt::format(" */\n{}", dialect.preamble);
  if (std::any_of(kernels.begin(), kernels.end(), [](const KernelSource& k) {
        return k.body.find("kiln_rand") != std::string::npos;
      }))
    src += dialect.random_prelude;
  for (const KernelSource& k : kernels)
    src += "\n" + config_prologue(k.name, k.config) + k.body + config_epilogue(k.config);
  return src;
}

std::string rename_kernel(const std::string& body, const std::string& name, const std::string& to) {
  std::string out;
  size_t from = 0;
  for (size_t at = body.find(name); at != std::string::npos; at = body.find(name, from)) {
    out.append(body, from, at - from).append(to);
    from = at + name.size();
  }
  return out.append(body, from, std::string::npos);
}

bool row_streams_inputs(const LoopKernel& kernel) {
  return kernel.kind == LoopKernel::Kind::Row && !kernel.columns &&
         !streamed_inputs(kernel).empty();
}

}  // namespace kiln
