// The loop program's verifier (loop/kernel.h): what the emitter and the executor assume.
#include <fmt/format.h>

#include "kiln/error.h"
#include "loop/kernel.h"

namespace kiln {

namespace {

class KernelChecker {
 public:
  KernelChecker(const LoopKernel& k, int num_symbols) : k_(k), num_symbols_(num_symbols) {}

  void check() {
    const bool row = k_.kind == LoopKernel::Kind::Row;
    expect(!k_.params.empty() && k_.params.size() == k_.param_dtypes.size(),
           "every parameter needs one dtype");
    if (k_.kind == LoopKernel::Kind::Foreach) {
      expect(!k_.parts.empty(), "a foreach kernel without parts");
      size_t params = 0;
      for (const LoopKernel& part : k_.parts) {
        expect(part.kind == LoopKernel::Kind::Pointwise, "foreach parts are pointwise kernels");
        KernelChecker(part, num_symbols_).check();
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

  void expr(const ExprPtr& e, bool element) {
    expect(e != nullptr, "a missing expression");
    switch (e->kind) {
      case Expr::Kind::Load:
        expect(e->param >= 0 && static_cast<size_t>(e->param) < k_.params.size(),
               fmt::format("a load of parameter p{}", e->param));
        expect(e->dtype == k_.param_dtypes[static_cast<size_t>(e->param)],
               fmt::format("a load of p{} as {}, which holds {}", e->param, dtype_name(e->dtype),
                           dtype_name(k_.param_dtypes[static_cast<size_t>(e->param)])));
        expect(e->args.empty(), "a load with operands");
        access(e->access);
        index(e->index, element);
        return;
      case Expr::Kind::Accumulator:
        expect(e->accumulator >= 0 && static_cast<size_t>(e->accumulator) < k_.phases.size(),
               fmt::format("accumulator {} of {} phases", e->accumulator, k_.phases.size()));
        expect(e->args.empty(), "an accumulator with operands");
        return;
      case Expr::Kind::Apply: {
        const OpInfo& info = op_info(e->op);
        expect(is_pointwise(info.rule), fmt::format("{} is not a pointwise op", info.name));
        expect(!e->args.empty(), fmt::format("{} without operands", info.name));
        for (const ExprPtr& a : e->args) expr(a, element);
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
  int num_symbols_;
  int64_t vars_ = 0;
};

}  // namespace

void verify_program(const Program& program) {
  for (const LoopKernel& k : program.kernels) KernelChecker(k, program.graph.num_symbols).check();
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
