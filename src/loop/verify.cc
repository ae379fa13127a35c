// The loop program's verifier (loop/kernel.h): what the emitter and the executor assume.
#include <fmt/format.h>

#include <set>
#include <utility>

#include "kiln/error.h"
#include "loop/kernel.h"

namespace kiln {

namespace {

class KernelChecker {
 public:
  KernelChecker(const LoopKernel& k, int num_symbols, Device device)
      : k_(k), num_symbols_(num_symbols), device_(device) {}

  void check() {
    const bool row = k_.kind == LoopKernel::Kind::Row;
    schedule();
    expect(!k_.params.empty() && k_.params.size() == k_.param_dtypes.size(),
           "every parameter needs one dtype");
    if (k_.kind == LoopKernel::Kind::Foreach) {
      expect(!k_.parts.empty(), "a foreach kernel without parts");
      size_t params = 0;
      for (const LoopKernel& part : k_.parts) {
        expect(part.kind == LoopKernel::Kind::Pointwise, "foreach parts are pointwise kernels");
        KernelChecker(part, num_symbols_, device_).check();
        params += part.params.size();
      }
      expect(params == k_.params.size(), "a foreach kernel's params are its parts' params");
      return;
    }
    expect(k_.num_outputs >= 1 && static_cast<size_t>(k_.num_outputs) <= k_.params.size(),
           fmt::format("{} outputs of {} params", k_.num_outputs, k_.params.size()));
    expect(row || (k_.phases.empty() && k_.row_stores.empty()), "only row kernels reduce");
    expect(row || !k_.columns, "only row kernels walk columns");
    expect(row == !k_.reduced_dims.empty(), "row kernels, and only they, reduce dims");
    for (size_t i = 0; i < k_.reduced_dims.size(); ++i)
      expect(k_.reduced_dims[i] >= 0 && static_cast<size_t>(k_.reduced_dims[i]) < k_.shape.size() &&
                 (i == 0 || k_.reduced_dims[i - 1] < k_.reduced_dims[i]),
             "reduced dims are sorted dims of the domain");
    expect(row || !k_.stores.empty(), "a pointwise kernel stores something");
    // Loop variables: a pointwise kernel's dims; a row kernel's row i0 and element i1.
    vars_ = row ? 2 : static_cast<int64_t>(k_.shape.size());
    for (const ReducePhase& ph : k_.phases) expr(ph.value, /*element=*/true);
    for (const Store& st : k_.row_stores) store(st, false);
    for (const Store& st : k_.stores) store(st, row);
  }

 private:
  void expect(bool ok, const std::string& what) const {
    if (!ok) throw Error(fmt::format("loop IR: kernel {}: {}", k_.name, what));
  }

  // The schedule's axes are the device's and fit the kernel (loop/schedule.h).
  void schedule() const {
    const Schedule& s = k_.schedule;
    expect(s.decided, "not scheduled");
    expect(s.device == device_, fmt::format("scheduled for {} in a {} program",
                                            device_name(s.device), device_name(device_)));
    const bool rows = k_.kind == LoopKernel::Kind::Row && !k_.columns;
    const int64_t held = s.held.elements();
    expect(s.split_row == Schedule::RowSplit::never || (rows && s.device == Device::cpu),
           "a split row outside a CPU row kernel");
    if (s.device == Device::cpu) {
      expect(!s.row_per_block && s.block_threads == kGpuThreads && held == 0 && !s.whole_runs &&
                 !s.split_blocks && s.vector_width == 0 && s.min_blocks_per_sm == 0,
             "GPU axes in a CPU schedule");
      return;
    }
    expect(s.block_threads >= 32 && s.block_threads <= 1024 && s.block_threads % 32 == 0,
           fmt::format("{} threads per block", s.block_threads));
    expect(s.row_per_block == rows, "a row per block is the row form of a row kernel");
    expect(!s.nested_loops, "nested loops on the GPU");
    if (held > 0) {
      int64_t r = 1;
      for (int64_t d : k_.reduced_dims) {
        const Dim& dim = k_.shape.at(static_cast<size_t>(d));
        expect(dim.is_const(), "a held row of a symbolic length");
        r *= dim.coeff;
      }
      const int w = s.held.width;
      expect(rows && k_.flat, "a held row outside a flat row kernel");
      expect((w == 1 || w == 2 || w == 4 || w == 8) && r % w == 0,
             fmt::format("held runs of {} elements in rows of {}", w, r));
      expect(held <= kMaxRegisterElements, fmt::format("{} held elements a thread", held));
      expect(s.held.chunks * s.block_threads * w >= r,
             fmt::format("{}x{} held elements on {} threads miss part of a row of {}",
                         s.held.chunks, w, s.block_threads, r));
      expect(!s.whole_runs || r % (int64_t{s.block_threads} * w) == 0,
             "whole runs in a row they do not divide");
    }
    expect(!s.whole_runs || held > 0, "whole runs without a held row");
    expect(s.min_blocks_per_sm == 0 || (held > 0 && s.block_threads * s.min_blocks_per_sm <= 2048),
           fmt::format("launch bounds of {} blocks of {} threads", s.min_blocks_per_sm,
                       s.block_threads));
    bool independent = true;
    for (const ReducePhase& ph : k_.phases)
      independent = independent && !reads_accumulator(ph.value);
    expect(!s.split_blocks || (rows && held == 0 && k_.stores.empty() && independent),
           "split blocks for a row kernel with element stores, a held row or dependent phases");
    const bool narrow = widest_element(k_) <= 4;
    expect(s.vector_width == 0 || (k_.kind == LoopKernel::Kind::Pointwise &&
                                   (k_.flat || k_.shape.empty()) && narrow && s.vector_width == 4),
           fmt::format("vector width {} for a kernel that is not flat pointwise of 4-byte or "
                       "narrower elements",
                       s.vector_width));
  }

  void index(const IndexPtr& i, bool element) {
    expect(i != nullptr, "an access without an index");
    switch (i->kind) {
      case IndexExpr::Kind::Const:
        return;
      case IndexExpr::Kind::Var:
        expect(i->value >= 0 && i->value < vars_,
               fmt::format("loop variable i{} is not in the domain", i->value));
        expect(element || k_.kind != LoopKernel::Kind::Row || i->value == 0,
               fmt::format("a row access reads the element variable i{}", i->value));
        return;
      case IndexExpr::Kind::Sym:
        expect(i->value >= 0 && i->value < num_symbols_,
               fmt::format("size symbol s{} is not the graph's", i->value));
        return;
      default:
        index(i->a, element);
        index(i->b, element);
    }
  }

  void access(Access a) {
    expect(a == Access::other || k_.kind == LoopKernel::Kind::Row,
           "only row kernels mark accesses");
  }

  // Expressions are DAGs: each shared node is checked once (in each context), so the walk
  // is linear in the nodes, not in the paths to them.
  void expr(const ExprPtr& e, bool element) {
    expect(e != nullptr, "a missing expression");
    if (!checked_.insert({e.get(), element}).second) return;
    switch (e->kind()) {
      case Expr::Kind::Load: {
        const Expr::Load& l = e->load();
        expect(l.param >= 0 && static_cast<size_t>(l.param) < k_.params.size(),
               fmt::format("a load of parameter p{}", l.param));
        const DType held = k_.param_dtypes[static_cast<size_t>(l.param)];
        expect(e->dtype == held, fmt::format("a load of p{} as {}, which holds {}", l.param,
                                             dtype_name(e->dtype), dtype_name(held)));
        access(l.access);
        index(l.index, element);
        return;
      }
      case Expr::Kind::Accumulator:
        expect(e->phase() >= 0 && static_cast<size_t>(e->phase()) < k_.phases.size(),
               fmt::format("accumulator {} of {} phases", e->phase(), k_.phases.size()));
        return;
      case Expr::Kind::Position:
        expect(e->dtype == DType::i64, "a position that is not i64");
        access(e->position().access);
        index(e->position().index, element);
        return;
      case Expr::Kind::Apply: {
        const OpInfo& info = op_info(e->apply().op);
        const auto& args = e->operands();
        if (info.rule == OpRule::Random) {
          // make_random's shape: seed and offset of i64, then the element's position.
          expect(args.size() == 3 && args[0]->dtype == DType::i64 && args[1]->dtype == DType::i64 &&
                     args[2]->kind() == Expr::Kind::Position && is_floating(e->dtype) &&
                     e->apply().attrs.has("draw"),
                 fmt::format("{} is not a random draw of a seed, an offset and a position",
                             info.name));
        } else if (info.rule == OpRule::Arange) {
          expect(args.size() == 2 && args[1]->kind() == Expr::Kind::Position &&
                     e->apply().attrs.has("step"),
                 "arange is not a start and a position");
        } else {
          expect(is_pointwise(info.rule), fmt::format("{} is not a pointwise op", info.name));
          expect(!args.empty(), fmt::format("{} without operands", info.name));
        }
        for (const ExprPtr& a : args) expr(a, element);
        return;
      }
    }
  }

  void store(const Store& st, bool element) {
    expect(st.param >= 0 && st.param < k_.num_outputs,
           fmt::format("a store into p{}, which is not an output", st.param));
    access(st.access);
    index(st.index, element);
    expr(st.value, element);
  }

  const LoopKernel& k_;
  std::set<std::pair<const Expr*, bool>> checked_;
  int num_symbols_;
  Device device_;
  int64_t vars_ = 0;
};

}  // namespace

void verify_program(const Program& program) {
  for (const LoopKernel& k : program.kernels)
    KernelChecker(k, program.graph.num_symbols, program.device).check();
  for (const Step& s : program.steps) {
    if (s.kind == Step::Kind::Kernel) {
      if (s.kernel < 0 || static_cast<size_t>(s.kernel) >= program.kernels.size())
        throw Error(fmt::format("loop IR: a step launches kernel {} of {}", s.kernel,
                                program.kernels.size()));
    } else if (s.node < 0 || static_cast<size_t>(s.node) >= program.graph.nodes.size()) {
      throw Error(fmt::format("loop IR: an ext step runs node {} of {}", s.node,
                              program.graph.nodes.size()));
    }
  }
  if (program.read_by_kernel.size() != static_cast<size_t>(program.graph.num_values()))
    throw Error("loop IR: read_by_kernel does not cover every value of the graph");
}

}  // namespace kiln
