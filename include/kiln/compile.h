// compile(): trace a C++ function of tensors into a graph on its first call, and run the
// compiled entry on later calls whose inputs match its guards (dtype, rank, sizes except
// dynamic dims, device, contiguity, list lengths, the values of int, double and bool
// arguments). A call that matches no entry traces again.
//
// Arguments: tensors, std::vector<Tensor>, std::pair and std::tuple of them, and numbers.
// int and bool arguments are specialized (the trace sees their values; the guards require
// the same values), and so is a `double` parameter. A parameter declared `SymFloat`
// (include/kiln/sym_float.h) is specialized on its first value and becomes a graph scalar
// once a call passes another ("automatic dynamic", as torch.compile treats Python floats).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "kiln/tensor.h"

namespace kiln {

enum class CompileMode { InProcess, Subprocess, Async, Progressive, AsyncProgressive };
enum class WorkerStart { Subprocess, Fork, Spawn };

// Options set here win over the environment (KILN_COMPILE_MODE, KILN_WORKER_START,
// KILN_COMPILE_THREADS); unset ones come from it.
struct CompileOptions {
  std::optional<CompileMode> mode;
  std::optional<WorkerStart> worker_start;
  std::optional<int> compile_threads;
  // The graph's name, in logs, traces and kernel files; characters other than letters,
  // digits, '_' and '.' become '_' (a graph name is an identifier of the text format).
  std::string name = "compiled";
  // Progressive and AsyncProgressive: the stages compiled in the background, in order
  // ("fast": tcc; "optimized": gcc -O3 -march=native). Empty: {"fast", "optimized"}.
  std::vector<std::string> stages;
  // Autotuning (docs/design.md §6) of the optimized build's kernels: candidate configs timed in a
  // benchmark worker, the winner cached. Unset: on for the optimized stage of Progressive
  // and AsyncProgressive; off for Async (compiled code answers sooner) and for InProcess
  // and Subprocess, whose compile the caller waits for.
  std::optional<bool> autotune;
  // With autotune: refine the best candidate by coordinate descent over the config fields.
  bool coordinate_descent = true;
  // With autotune: generated tiled GEMM kernels (kind tem) compete with the BLAS call of
  // each matmul, and the faster is kept.
  bool max_autotune = false;
  // GPU graphs (like torch.compile's "reduce-overhead"): after a warm-up call the compiled
  // code is captured once as a CUDA graph and later calls replay it, one launch for the
  // whole plan. Inputs at other addresses are copied into the captured ones first; results
  // are copies, so the next replay does not overwrite them; so calls moving more than 16 MiB
  // run as usual (their kernels outweigh launch costs). A plan that cannot be captured (a
  // step that waits on the host) runs as usual, counted in cuda.graph_fallbacks.
  bool cuda_graphs = false;
  // Tensors the function captures (from before its first call) are graph inputs bound to
  // those tensors: each call reads them as they are then, in-place changes and raw writes
  // included. freeze_captured folds them into the graph as constants instead (constant
  // folding sees them), guarded by their versions: after a write to one, the next call
  // traces and compiles again (guard.frozen_changed). A frozen tensor must not be mutated
  // by the function itself.
  bool freeze_captured = false;
};

// One kernel of a compiled graph, as it was built.
struct KernelInfo {
  std::string name;    // cpp_poi_fused_add_0
  std::string config;  // "THREADS=2,VEC=512"; empty for a kernel with nothing to tune
  std::string tuning;  // how the config was chosen: default, benchmarked, lookup_table, cached
};

// What became of one background stage of a graph (Async, Progressive, AsyncProgressive):
// a stage that lands serves calls only once it measured faster, on live calls interleaved
// with the stage serving them, than that stage (docs/design.md §5).
struct StageDecision {
  std::string stage;           // fast, optimized; eager for AsyncProgressive's final recheck
                               // (eager timed against the compiled stage serving at the end)
  std::string outcome;         // on_trial, promoted, not_promoted, superseded (it landed while
                               // another was on trial, and a newer one landed before that
                               // trial ended), failed (it did not compile)
  std::string against;         // the stage it was measured against: eager, fast, ...
  double seconds = 0;          // its median time per call in the trial
  double against_seconds = 0;  // the other stage's, on the calls interleaved with it
  int calls = 0;               // timed calls of each
};

// kiln's counters (docs/design.md §6), every one present from the start.
std::map<std::string, int64_t> stats();
void reset_stats();

std::string_view compile_mode_name(CompileMode mode);   // inprocess, subprocess, ...
std::string_view worker_start_name(WorkerStart start);  // subprocess, fork, spawn

namespace detail {

// A call's tensors and scalars flattened in order, and the structure that rebuilds them: one
// entry per argument or result, -1 for a Tensor, -2 for a scalar (int, double, bool), -3 for
// a floating argument whose parameter is a SymFloat, n for a list of n tensors (tuples and
// pairs are flattened). Scalars are specialized (the trace sees their values, and the guards
// require the same values), except SymFloat ones that a changed value made graph scalars
// (docs/design.md §3).
struct Flat {
  std::vector<Tensor> tensors;
  std::vector<int64_t> structure;
  std::vector<Scalar> scalars;
  // While tracing: per scalar, its traced 0-d f64 graph input when it is a graph scalar.
  std::vector<Tensor> scalar_inputs;
};

inline constexpr int64_t kFlatTensor = -1;
inline constexpr int64_t kFlatScalar = -2;
inline constexpr int64_t kFlatSymFloat = -3;

inline void flatten(const Tensor& t, Flat& f) {
  f.tensors.push_back(t);
  f.structure.push_back(kFlatTensor);
}
inline void flatten(const std::vector<Tensor>& v, Flat& f) {
  f.structure.push_back(static_cast<int64_t>(v.size()));
  f.tensors.insert(f.tensors.end(), v.begin(), v.end());
}
template <class T, std::enable_if_t<std::is_arithmetic_v<T>, int> = 0>
void flatten(T value, Flat& f) {
  f.scalars.emplace_back(value);
  f.structure.push_back(kFlatScalar);
}
inline void flatten(const SymFloat& value, Flat& f) {
  f.scalars.emplace_back(value.guard_double());
  f.structure.push_back(kFlatSymFloat);
}
template <class... T>
void flatten(const std::tuple<T...>& t, Flat& f) {
  std::apply([&f](const auto&... e) { (flatten(e, f), ...); }, t);
}
template <class A, class B>
void flatten(const std::pair<A, B>& p, Flat& f) {
  flatten(p.first, f);
  flatten(p.second, f);
}

struct Cursor {
  const Flat& flat;
  size_t tensor = 0;
  size_t item = 0;
  size_t scalar = 0;
};

template <class T>
struct Unflatten;
template <>
struct Unflatten<Tensor> {
  static Tensor take(Cursor& c) {
    ++c.item;
    return c.flat.tensors.at(c.tensor++);
  }
};
template <>
struct Unflatten<std::vector<Tensor>> {
  static std::vector<Tensor> take(Cursor& c) {
    auto n = static_cast<size_t>(c.flat.structure.at(c.item++));
    auto first = c.flat.tensors.begin() + static_cast<std::ptrdiff_t>(c.tensor);
    c.tensor += n;
    return std::vector<Tensor>(first, first + static_cast<std::ptrdiff_t>(n));
  }
};
template <class... T>
struct Unflatten<std::tuple<T...>> {
  static std::tuple<T...> take(Cursor& c) { return std::tuple<T...>{Unflatten<T>::take(c)...}; }
};
template <class A, class B>
struct Unflatten<std::pair<A, B>> {
  static std::pair<A, B> take(Cursor& c) {
    A a = Unflatten<A>::take(c);  // in order: braced init would not fix it for a pair
    return std::pair<A, B>(std::move(a), Unflatten<B>::take(c));
  }
};
template <>
struct Unflatten<SymFloat> {
  static SymFloat take(Cursor& c) {
    ++c.item;
    size_t k = c.scalar++;
    double value = c.flat.scalars.at(k).to_double();
    if (k < c.flat.scalar_inputs.size() && c.flat.scalar_inputs[k].defined())
      return SymFloat::traced(c.flat.scalar_inputs[k], value, static_cast<int32_t>(k));
    return SymFloat(value);
  }
};
template <class T>
requires std::is_arithmetic_v<T>
struct Unflatten<T> {
  static T take(Cursor& c) {
    ++c.item;
    const Scalar& s = c.flat.scalars.at(c.scalar++);
    if constexpr (std::is_same_v<T, bool>) {
      return s.to_int() != 0;
    } else if constexpr (std::is_integral_v<T>) {
      return static_cast<T>(s.to_int());
    } else {
      return static_cast<T>(s.to_double());
    }
  }
};

// The parameter types of F's call, when it has one non-template call operator (a lambda that
// is not generic, a function object, a function pointer).
template <class M>
struct MemberParams {
  static constexpr bool known = false;
};
template <class R, class C, class... P>
struct MemberParams<R (C::*)(P...) const> {
  static constexpr bool known = true;
  using type = std::tuple<P...>;
};
template <class R, class C, class... P>
struct MemberParams<R (C::*)(P...)> : MemberParams<R (C::*)(P...) const> {};
template <class R, class C, class... P>
struct MemberParams<R (C::*)(P...) const noexcept> : MemberParams<R (C::*)(P...) const> {};
template <class R, class C, class... P>
struct MemberParams<R (C::*)(P...) noexcept> : MemberParams<R (C::*)(P...) const> {};
template <class F, class = void>
struct Params {
  static constexpr bool known = false;
};
template <class F>
struct Params<F, std::void_t<decltype(&F::operator())>> : MemberParams<decltype(&F::operator())> {};
template <class R, class... P>
struct Params<R (*)(P...)> {
  static constexpr bool known = true;
  using type = std::tuple<P...>;
};

// Whether parameter K of F is a SymFloat.
template <class Tuple, size_t K, bool = (K < std::tuple_size_v<Tuple>)>
struct ParamIsSymFloat : std::false_type {};
template <class Tuple, size_t K>
struct ParamIsSymFloat<Tuple, K, true>
    : std::is_same<std::decay_t<std::tuple_element_t<K, Tuple>>, SymFloat> {};
template <class F, size_t K, class = void>
struct TakesSymFloat : std::false_type {};
template <class F, size_t K>
struct TakesSymFloat<F, K, std::enable_if_t<Params<F>::known>>
    : ParamIsSymFloat<typename Params<F>::type, K> {};

// What argument K (of type A) is traced as: a SymFloat where F takes one and the caller
// passes a number, else A itself.
template <class F, size_t K, class A>
using TraceArg = std::conditional_t<std::is_arithmetic_v<A> && TakesSymFloat<F, K>::value, SymFloat,
                                    std::decay_t<A>>;

template <class T, class A>
void flatten_as(const A& arg, Flat& f) {
  if constexpr (std::is_same_v<T, SymFloat>) {
    flatten(SymFloat(static_cast<double>(arg)), f);
  } else {
    flatten(arg, f);
  }
}

using TraceFn = std::function<Flat(const Flat& inputs)>;

class CompiledCore;
std::shared_ptr<CompiledCore> make_compiled_core(const CompileOptions& options);
// Runs the entry whose guards `inputs` match, tracing with `trace` on a miss.
Flat call_compiled(CompiledCore& core, const Flat& inputs, const TraceFn& trace);
// The text of every traced graph of `core`, in the order they were traced.
std::vector<std::string> compiled_graphs(const CompiledCore& core);
std::vector<std::string> compiled_stages(const CompiledCore& core);
std::vector<std::string> compile_errors(const CompiledCore& core);
std::vector<std::vector<StageDecision>> stage_history(const CompiledCore& core);
bool wait_for_stages(const CompiledCore& core, double timeout_seconds);
std::vector<KernelInfo> compiled_kernels(const CompiledCore& core, size_t index);
std::string compiled_build_options(const CompiledCore& core, size_t index);
void save_compiled_graph(const CompiledCore& core, size_t index, const std::string& path);

}  // namespace detail

template <class F>
class CompiledFunction {
 public:
  CompiledFunction(F fn, const CompileOptions& options)
      : fn_(std::move(fn)), core_(detail::make_compiled_core(options)) {}

  template <class... Args>
  auto operator()(const Args&... args) {
    return call(std::index_sequence_for<Args...>{}, args...);
  }

  // The canonical text of each graph traced so far (one per guard entry).
  std::vector<std::string> graphs() const { return detail::compiled_graphs(*core_); }
  // Per graph: the stage that serves its calls now ("eager", "fast", "optimized" in the
  // background modes; "cpp" or "interpreter" otherwise).
  std::vector<std::string> stages() const { return detail::compiled_stages(*core_); }
  // Per graph: each background stage that landed or failed, in order, and whether it took
  // over (StageDecision). stages() keeps naming the stage that serves the calls.
  std::vector<std::vector<StageDecision>> stage_history() const {
    return detail::stage_history(*core_);
  }
  // Background compiles that failed (each reported once): the calls went on eagerly or
  // with the previous stage. Empty when all went well.
  std::vector<std::string> compile_errors() const { return detail::compile_errors(*core_); }
  // Blocks until the background stages of every graph traced so far (and of its backward
  // graph, compiled when a backward() first ran it) have landed or failed, at most
  // `timeout_seconds`; true when they all settled. Calls made meanwhile (on other
  // threads) are served as usual. Without background stages it returns true at once.
  bool wait_for_stages(double timeout_seconds) const {
    return detail::wait_for_stages(*core_, timeout_seconds);
  }
  // The kernels graph `index` runs now (its current stage's), with their configs; empty
  // while it runs eagerly.
  std::vector<KernelInfo> kernels(size_t index = 0) const {
    return detail::compiled_kernels(*core_, index);
  }
  // How graph `index`'s current stage was built, e.g. "tier=optimized compiler=gcc
  // autotune=on coordinate_descent=on max_autotune=off"; empty while it runs eagerly.
  std::string build_options(size_t index = 0) const {
    return detail::compiled_build_options(*core_, index);
  }
  // Writes graph `index` as text to `path` (GRAPH.kiln) and its constants beside it
  // (GRAPH.safetensors), the captured tensors among them with the values they have now:
  // `kiln run GRAPH.kiln` and load_graph() run it on the call's inputs. (Outputs past the
  // function's results are the new values of the inputs it mutates.)
  void save_graph(const std::string& path, size_t index = 0) const {
    detail::save_compiled_graph(*core_, index, path);
  }

 private:
  template <size_t... K, class... Args>
  auto call(std::index_sequence<K...>, const Args&... args) {
    using Result = std::decay_t<std::invoke_result_t<F&, const detail::TraceArg<F, K, Args>&...>>;
    detail::Flat in;
    (detail::flatten_as<detail::TraceArg<F, K, Args>>(args, in), ...);
    detail::TraceFn trace = [this](const detail::Flat& traced) {
      detail::Cursor cursor{traced};
      std::tuple<detail::TraceArg<F, K, Args>...> rebuilt{
          detail::Unflatten<detail::TraceArg<F, K, Args>>::take(cursor)...};
      detail::Flat out;
      detail::flatten(std::apply(fn_, rebuilt), out);
      return out;
    };
    detail::Flat out = detail::call_compiled(*core_, in, trace);
    detail::Cursor cursor{out};
    return detail::Unflatten<Result>::take(cursor);
  }

  F fn_;
  std::shared_ptr<detail::CompiledCore> core_;
};

template <class F>
CompiledFunction<F> compile(F fn, const CompileOptions& options = {}) {
  return CompiledFunction<F>(std::move(fn), options);
}

}  // namespace kiln
