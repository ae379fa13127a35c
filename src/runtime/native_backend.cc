// The native CPU backend: a lowered Program whose loop kernels were compiled to a shared
// object, run as a plan of kernel launches and ext steps over buffers that are freed after
// their last reader.
#include <fmt/format.h>
#include <stdlib.h>
#include <xxhash.h>

#include <filesystem>
#include <map>
#include <mutex>

#include "codegen/c_emitter.h"
#include "compile/shared_object.h"
#include "compile/toolchain.h"
#include "eager/dispatch.h"
#include "eager/interpreter.h"
#include "kiln/error.h"
#include "lower/lower.h"
#include "runtime/executable.h"
#include "support/log.h"
#include "support/stats.h"
#include "tensor/tensor_impl.h"

namespace kiln {

namespace {

using KernelFn = void (*)(const int64_t*, char* const*);

// A private scratch directory for this process's compiled objects (the persistent cache
// replaces it); removed at exit.
const std::string& scratch_dir() {
  static const std::string dir = [] {
    char templ[] = "/tmp/kiln-XXXXXX";
    if (!mkdtemp(templ)) throw Error("cannot create a scratch directory under /tmp");
    std::string path = templ;
    static struct Cleanup {
      std::string path;
      ~Cleanup() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
      }
    } cleanup{path};
    return path;
  }();
  return dir;
}

// Compiled translation units of this process by (source, toolchain): one compile each.
std::shared_ptr<SharedObject> compile_cached(const std::string& source, const Toolchain& toolchain,
                                             const std::string& first_kernel) {
  static std::mutex mutex;
  static std::map<uint64_t, std::shared_ptr<SharedObject>> loaded;
  std::string key_text = toolchain.identity() + "\n" + source;
  uint64_t key = XXH64(key_text.data(), key_text.size(), 0);
  {
    std::lock_guard<std::mutex> lock(mutex);
    auto it = loaded.find(key);
    if (it != loaded.end()) {
      bump(Stat::cache_kernel_hit);
      return it->second;
    }
  }
  bump(Stat::cache_kernel_miss);
  bump(Stat::compile_in_process);
  std::string name = fmt::format("{}_{:016x}", first_kernel, key);
  auto lib = SharedObject::load(compile_shared_object(toolchain, name, source, scratch_dir()));
  std::lock_guard<std::mutex> lock(mutex);
  return loaded.emplace(key, lib).first->second;
}

class NativeExecutable final : public Executable {
 public:
  NativeExecutable(Program program, const Toolchain& toolchain) : p_(std::move(program)) {
    const Graph& g = p_.graph;
    if (!p_.kernels.empty()) {
      std::string source = emit_translation_unit(g.name, p_.kernels, g.num_symbols, cpp_dialect());
      if (log_enabled("output_code")) log_line("output_code", source);
      lib_ = compile_cached(source, toolchain, p_.kernels[0].name);
      for (const LoopKernel& k : p_.kernels)
        fns_.push_back(reinterpret_cast<KernelFn>(lib_->symbol(k.name)));
    }
    for (const LoopKernel& k : p_.kernels) {
      std::vector<ValueId> outs;
      if (k.kind == LoopKernel::Kind::Foreach) {
        for (const LoopKernel& part : k.parts) outs.push_back(part.params[0]);
      } else {
        outs.assign(k.params.begin(), k.params.begin() + k.num_outputs);
      }
      outputs_.push_back(std::move(outs));
    }
    // Free each value after the last step that reads it.
    last_use_.assign(static_cast<size_t>(g.num_values()), -1);
    for (size_t s = 0; s < p_.steps.size(); ++s) {
      const Step& step = p_.steps[s];
      auto reads = step.kind == Step::Kind::Kernel ? p_.kernels[step.kernel].params
                                                   : g.nodes[step.node].inputs;
      for (ValueId v : reads) last_use_[v] = static_cast<int64_t>(s);
    }
    for (ValueId v : g.outputs) last_use_[v] = static_cast<int64_t>(p_.steps.size());
    // In-place candidates: a flat pointwise kernel reads every input at the index it writes,
    // so it may write over an intermediate of its dtype that dies at this step.
    inplace_.assign(p_.steps.size(), -1);
    for (size_t s = 0; s < p_.steps.size(); ++s) {
      const Step& step = p_.steps[s];
      if (step.kind != Step::Kind::Kernel) continue;
      const LoopKernel& k = p_.kernels[static_cast<size_t>(step.kernel)];
      if (k.kind != LoopKernel::Kind::Pointwise || !k.flat) continue;
      for (size_t i = 1; i < k.params.size(); ++i) {
        ValueId v = k.params[i];
        if (g.node_index(v) >= 0 && last_use_[v] == static_cast<int64_t>(s) &&
            g.value_type(v).dtype == k.param_dtypes[0]) {
          inplace_[s] = v;
          break;
        }
      }
    }
  }

  std::vector<Tensor> run(const std::vector<Tensor>& inputs) override {
    const Graph& g = p_.graph;
    std::vector<int64_t> bindings = bind_inputs(g, inputs);
    std::vector<Tensor> slots(static_cast<size_t>(g.num_values()));
    for (size_t i = 0; i < inputs.size(); ++i)
      slots[i] = p_.read_by_kernel[i] ? contiguous_eager(inputs[i]) : inputs[i];
    for (size_t c = 0; c < g.constants.size(); ++c) slots[g.inputs.size() + c] = g.constants[c].value;
    std::vector<char*> buffers;
    for (size_t s = 0; s < p_.steps.size(); ++s) {
      const Step& step = p_.steps[s];
      const Node& node = g.nodes[static_cast<size_t>(step.node)];
      const ValueId out = g.node_value(static_cast<size_t>(step.node));
      if (step.kind == Step::Kind::Kernel) {
        const LoopKernel& k = p_.kernels[static_cast<size_t>(step.kernel)];
        for (ValueId v : outputs_[static_cast<size_t>(step.kernel)]) {
          Shape shape;
          for (const Dim& d : g.value_type(v).shape) shape.push_back(d.eval(bindings));
          slots[v] = reuse(s, slots, shape);
          if (!slots[v].defined()) slots[v] = make_tensor(shape, g.value_type(v).dtype);
        }
        buffers.clear();
        for (ValueId v : k.params) buffers.push_back(slots[v].impl()->data_ptr());
        fns_[static_cast<size_t>(step.kernel)](bindings.data(), buffers.data());
      } else {
        std::vector<Tensor> args;
        for (ValueId v : node.inputs) args.push_back(slots[v]);
        Tensor result = run_node(node, args, bindings);
        slots[out] = p_.read_by_kernel[out] ? contiguous_eager(result) : result;
      }
      for (size_t i = g.inputs.size() + g.constants.size(); i < slots.size(); ++i)
        if (last_use_[i] == static_cast<int64_t>(s)) slots[i] = Tensor();
    }
    std::vector<Tensor> outputs;
    for (ValueId v : g.outputs) outputs.push_back(owned_output(g, slots[v], inputs));
    return outputs;
  }

  std::string_view backend_name() const override { return "cpp"; }

 private:
  // The storage of step `s`'s in-place candidate, when nothing else refers to it (an eager
  // view could share it) and it holds exactly `shape`'s elements; else undefined.
  Tensor reuse(size_t s, const std::vector<Tensor>& slots, const Shape& shape) const {
    ValueId v = inplace_[s];
    if (v < 0) return Tensor();
    const Tensor& t = slots[v];
    if (!t.defined() || t.impl_ptr().use_count() != 1 || t.impl()->storage.use_count() != 1 ||
        t.offset() != 0 || !t.is_contiguous() || t.numel() != shape_numel(shape))
      return Tensor();
    bump(Stat::executor_inplace);
    return make_view(t, shape, contiguous_strides(shape), 0);
  }

 public:
  std::vector<std::string> kernel_names() const override {
    std::vector<std::string> names;
    for (const Step& s : p_.steps)
      names.push_back(s.kind == Step::Kind::Kernel ? p_.kernels[static_cast<size_t>(s.kernel)].name
                                                   : fmt::format("ext:{}", op_name(p_.graph.nodes[static_cast<size_t>(s.node)].op)));
    return names;
  }

 private:
  Program p_;
  std::shared_ptr<SharedObject> lib_;
  std::vector<KernelFn> fns_;
  std::vector<std::vector<ValueId>> outputs_;  // per kernel: the values it writes
  std::vector<int64_t> last_use_;
  std::vector<ValueId> inplace_ = {};  // per step: an input its output may overwrite, or -1
};

}  // namespace

std::unique_ptr<Executable> make_native_executable(const Graph& graph, Tier tier) {
  return std::make_unique<NativeExecutable>(lower_graph(graph), toolchain_for(tier));
}

}  // namespace kiln
