// A structured fuzzer: random valid graphs (pointwise ops, casts, compares, where,
// reductions, permutes and expands over shapes with 0- and 1-sized dims, in f32, f64, i32
// and bool, some with a dynamic dim) built through the graph builder, printed and parsed
// back, then compiled and compared with the eager interpreter on random inputs
// (run_repro, as `kiln repro` does). It catches wrong answers, not only crashes. CI runs a
// fixed set of seeds; the `full` label runs many more. A failure prints the graph text.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <random>

#include "driver/replay_repro.h"
#include "graph/text.h"
#include "graph/verify.h"
#include "kiln/error.h"

namespace kiln {
namespace {

class RandomGraph {
 public:
  explicit RandomGraph(uint64_t seed) : rng_(seed), builder_(fmt::format("random_{}", seed)) {}

  // A graph and its bindings, or nullopt when the draw made nothing worth running.
  std::optional<std::pair<Graph, std::vector<int64_t>>> build() {
    const bool dynamic = pick(4) == 0;
    Shape base;
    const int rank = static_cast<int>(pick(4));
    for (int d = 0; d < rank; ++d) base.push_back(kSizes[pick(std::size(kSizes))]);
    std::vector<int64_t> bindings;
    const int inputs = 1 + static_cast<int>(pick(3));
    for (int i = 0; i < inputs; ++i) {
      TensorType type{kDTypes[pick(std::size(kDTypes))], {}};
      // Later inputs broadcast against the first: a suffix of its dims, some of them 1.
      const size_t skip = i == 0 ? 0 : pick(base.size() + 1);
      for (size_t d = skip; d < base.size(); ++d)
        type.shape.push_back(Dim::constant(i > 0 && pick(3) == 0 ? 1 : base[d]));
      if (dynamic && i == 0 && !type.shape.empty() && type.shape[0].coeff > 0) {
        bindings = {type.shape[0].coeff};
        type.shape[0] = Dim::symbol(0);
      }
      values_.push_back(builder_.add_input(fmt::format("x{}", i), type));
    }
    if (!bindings.empty()) builder_.use_symbols(1);
    const int nodes = 1 + static_cast<int>(pick(10));
    for (int n = 0; n < nodes * 4 && static_cast<int>(made_.size()) < nodes; ++n) try_node();
    if (made_.empty()) return std::nullopt;
    std::vector<ValueId> outputs{made_.back()};
    if (made_.size() > 1 && pick(2)) outputs.push_back(made_[pick(made_.size() - 1)]);
    builder_.set_outputs(outputs);
    return std::make_pair(builder_.finish(), bindings);
  }

 private:
  static constexpr int64_t kSizes[] = {0, 1, 1, 2, 3, 5, 8};
  static constexpr DType kDTypes[] = {DType::f32, DType::f32, DType::f64, DType::i32, DType::bool_};

  size_t pick(size_t n) {
    return n == 0 ? 0 : std::uniform_int_distribution<size_t>(0, n - 1)(rng_);
  }
  ValueId any_value() { return values_[pick(values_.size())]; }
  const TensorType& type_of(ValueId v) const { return builder_.graph().value_type(v); }

  // One node of a random kind on random operands; the op's own type rules (infer_type)
  // reject what does not fit, and then nothing is added.
  void try_node() {
    const ValueId a = any_value(), b = any_value();
    const DType da = type_of(a).dtype;
    const bool floating = is_floating(da);
    Attrs attrs;
    std::vector<ValueId> in{a};
    Op op = Op::neg;
    switch (pick(9)) {
      case 0: {  // unary; integers only through ops that cannot overflow here
        static constexpr Op kFloat[] = {Op::neg,  Op::abs, Op::relu,    Op::sin,  Op::cos,
                                        Op::tanh, Op::exp, Op::sigmoid, Op::sqrt, Op::floor};
        static constexpr Op kInt[] = {Op::relu, Op::sign};
        op = floating ? kFloat[pick(std::size(kFloat))] : kInt[pick(std::size(kInt))];
        break;
      }
      case 1:
      case 2: {  // binary, broadcasting
        static constexpr Op kOps[] = {Op::add, Op::sub, Op::mul, Op::maximum, Op::minimum, Op::div};
        op = kOps[pick(std::size(kOps))];
        if (!floating && op == Op::mul) op = Op::maximum;  // no integer overflow
        in.push_back(b);
        break;
      }
      case 3:  // a compare
        op = pick(2) ? Op::lt : Op::ge;
        in.push_back(b);
        break;
      case 4: {  // where, on a bool condition of its own
        const ValueId c = any_value();
        if (type_of(c).dtype != DType::bool_) return;
        op = Op::where;
        in = {c, a, b};
        break;
      }
      case 5:  // a cast
        op = Op::to;
        attrs.set("dtype", kDTypes[pick(std::size(kDTypes))]);
        if (!floating && attrs.get_dtype("dtype") == DType::bool_) return;
        // f32 math cast up to f64 would be compared at f64's tolerance, though it carries
        // f32's rounding (libmvec's expf and eager's differ by an ulp).
        if (da == DType::f32 && attrs.get_dtype("dtype") == DType::f64) return;
        break;
      case 6: {  // a reduction over one dim
        const auto& shape = type_of(a).shape;
        if (shape.empty()) return;
        const int64_t dim = static_cast<int64_t>(pick(shape.size()));
        static constexpr Op kOps[] = {Op::sum, Op::amax, Op::mean};
        op = kOps[pick(std::size(kOps))];
        // max over nothing is an error, not a value; integer sums of these are small
        if (op == Op::amax && (!shape[static_cast<size_t>(dim)].is_const() ||
                               shape[static_cast<size_t>(dim)].coeff == 0))
          return;
        if (da == DType::bool_ && op == Op::amax) return;
        attrs.set_ints("dims", {dim});
        attrs.set("keepdim", pick(2) == 0);
        break;
      }
      case 7: {  // a permute (reversed dims)
        const auto& shape = type_of(a).shape;
        if (shape.size() < 2) return;
        std::vector<int64_t> dims;
        for (size_t d = shape.size(); d-- > 0;) dims.push_back(static_cast<int64_t>(d));
        op = Op::permute;
        attrs.set_ints("dims", dims);
        break;
      }
      default: {  // an expand of size-1 dims
        std::vector<Dim> shape = type_of(a).shape;
        bool any = false;
        for (Dim& d : shape)
          if (d.is_one() && pick(2)) {
            d = Dim::constant(3);
            any = true;
          }
        if (!any) return;
        op = Op::expand;
        attrs.set("shape", shape);
        break;
      }
    }
    try {
      const ValueId v = builder_.add_node(op, in, std::move(attrs));
      values_.push_back(v);
      made_.push_back(v);
    } catch (const Error&) {
      // the op does not take these operands: draw again
    }
  }

  std::mt19937_64 rng_;
  GraphBuilder builder_;
  std::vector<ValueId> values_, made_;
};

void check_seeds(uint64_t first, uint64_t count) {
  int ran = 0;
  for (uint64_t seed = first; seed < first + count; ++seed) {
    std::optional<std::pair<Graph, std::vector<int64_t>>> drawn = RandomGraph(seed).build();
    if (!drawn) continue;
    const std::string text = print_graph(drawn->first);
    SCOPED_TRACE(
        fmt::format("seed {}:\n{}bindings [{}]", seed, text, fmt::join(drawn->second, ", ")));
    Repro r;
    r.graph = parse_graph(text, "random");  // the printer and the parser agree on it
    verify_graph(r.graph);
    r.bindings = drawn->second;
    r.recorded_mode = "inprocess";
    r.seed = seed;
    ReproOutcome outcome = run_repro(r);
    EXPECT_EQ(outcome.exit_code, 0) << outcome.report;
    ++ran;
  }
  EXPECT_GT(ran, static_cast<int>(count / 2));
}

#ifndef KILN_RANDOM_GRAPHS
#define KILN_RANDOM_GRAPHS 60
#endif
TEST(RandomGraphs, CompiledMatchesEager) { check_seeds(1, KILN_RANDOM_GRAPHS); }

}  // namespace
}  // namespace kiln
