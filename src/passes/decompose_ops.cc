#include <cfloat>

#include "passes/passes.h"
#include "passes/rebuild.h"

namespace kiln {

namespace {

// Emits primitive nodes into a Rebuilder.
class Emitter {
 public:
  explicit Emitter(Rebuilder& r) : r_(r) {}

  ValueId op(Op op, const std::vector<ValueId>& in, Attrs attrs = {}) {
    return r_.add(op, in, std::move(attrs));
  }
  ValueId scalar(Op op, ValueId x, double value) {
    Attrs a;
    a.set("scalar", value);
    return r_.add(op, {x}, a);
  }
  ValueId reduce(Op op, ValueId x, const std::vector<int64_t>& dims, bool keepdim) {
    Attrs a;
    a.set_ints("dims", dims).set("keepdim", keepdim);
    return r_.add(op, {x}, a);
  }
  ValueId cast(ValueId x, DType dtype) {
    if (r_.type(x).dtype == dtype) return x;
    Attrs a;
    a.set("dtype", dtype);
    return r_.add(Op::to, {x}, a);
  }
  // f16/bf16 composites compute in f32 and round once at the end, as the eager kernels do.
  ValueId upcast(ValueId x) {
    DType d = r_.type(x).dtype;
    return d == DType::f16 || d == DType::bf16 ? cast(x, DType::f32) : x;
  }
  // Element count of `dims` of x, or -1 when one of them is dynamic.
  int64_t count(ValueId x, const std::vector<int64_t>& dims) {
    int64_t n = 1;
    for (int64_t d : dims) {
      const Dim& dim = r_.type(x).shape[static_cast<size_t>(d)];
      if (!dim.is_const()) return -1;
      n *= dim.coeff;
    }
    return n;
  }
  ValueId mean(ValueId x, const std::vector<int64_t>& dims, bool keepdim) {
    return scalar(Op::div, reduce(Op::sum, x, dims, keepdim), static_cast<double>(count(x, dims)));
  }
  int64_t rank(ValueId x) { return static_cast<int64_t>(r_.type(x).shape.size()); }

 private:
  Rebuilder& r_;
};

}  // namespace

bool decompose_ops_rewrites(Op op) {
  switch (op) {
    case Op::softmax:
    case Op::log_softmax:
    case Op::logsumexp:
    case Op::mean:
    case Op::var:
    case Op::std:
    case Op::layer_norm:
    case Op::gelu:
    case Op::linear:
      return true;
    default:
      return false;
  }
}

namespace {

// The replacement of `node` with inputs mapped to `in`, or -1 to keep the node.
ValueId decompose(Emitter& e, const Node& node, const std::vector<ValueId>& in) {
  if (!decompose_ops_rewrites(node.op)) return -1;  // the list above is the one list
  const DType out = node.type.dtype;
  const Attrs& attrs = node.attrs;
  switch (node.op) {
    case Op::softmax:
    case Op::log_softmax: {
      ValueId x = e.upcast(in[0]);
      if (e.rank(x) == 0) return -1;
      std::vector<int64_t> dims{normalize_dim(attrs.get_int("dim"), e.rank(x), "softmax")};
      ValueId shifted = e.op(Op::sub, {x, e.reduce(Op::amax, x, dims, true)});
      ValueId exp = e.op(Op::exp, {shifted});
      ValueId sum = e.reduce(Op::sum, exp, dims, true);
      ValueId y = node.op == Op::softmax ? e.op(Op::div, {exp, sum})
                                         : e.op(Op::sub, {shifted, e.op(Op::log, {sum})});
      return e.cast(y, out);
    }
    case Op::logsumexp: {
      ValueId x = e.upcast(e.cast(in[0], out));
      auto dims = reduction_dims(attrs.get_ints("dims"), e.rank(x), "logsumexp");
      // An infinite max would make x - max NaN; a finite stand-in keeps ±inf rows exact.
      double big = out == DType::f64 ? DBL_MAX : FLT_MAX;
      Attrs finite;
      finite.set("min", -big).set("max", big);
      ValueId m = e.op(Op::clamp, {e.reduce(Op::amax, x, dims, true)}, finite);
      ValueId shifted = e.op(Op::sub, {x, m});
      ValueId s = e.reduce(Op::sum, e.op(Op::exp, {shifted}), dims, true);
      ValueId y = e.op(Op::add, {e.op(Op::log, {s}), m});
      if (!attrs.get_bool("keepdim", false)) {
        Attrs shape;
        shape.set("shape", node.type.shape);
        y = e.op(Op::reshape, {y}, shape);
      }
      return e.cast(y, out);
    }
    case Op::mean:
    case Op::var:
    case Op::std: {
      ValueId x = e.upcast(in[0]);
      auto dims = reduction_dims(attrs.get_ints("dims"), e.rank(x), op_name(node.op));
      int64_t n = e.count(x, dims);
      if (n < 0) return -1;  // a dynamic count: the op stays, lowered as it is
      bool keep = attrs.get_bool("keepdim", false);
      if (node.op == Op::mean) return e.cast(e.mean(x, dims, keep), out);
      ValueId d = e.op(Op::sub, {x, e.mean(x, dims, true)});
      ValueId ss = e.reduce(Op::sum, e.op(Op::mul, {d, d}), dims, keep);
      double denom = static_cast<double>(std::max<int64_t>(0, n - attrs.get_int("correction")));
      ValueId y = e.scalar(Op::div, ss, denom);
      if (node.op == Op::std) y = e.op(Op::sqrt, {y});
      return e.cast(y, out);
    }
    case Op::layer_norm: {
      ValueId x = e.upcast(in[0]);
      int64_t k = static_cast<int64_t>(attrs.get_ints("normalized_shape").size());
      std::vector<int64_t> dims;
      for (int64_t d = e.rank(x) - k; d < e.rank(x); ++d) dims.push_back(d);
      ValueId d = e.op(Op::sub, {x, e.mean(x, dims, true)});
      ValueId var = e.mean(e.op(Op::mul, {d, d}), dims, true);
      ValueId y =
          e.op(Op::mul, {d, e.op(Op::rsqrt, {e.scalar(Op::add, var, attrs.get_double("eps"))})});
      if (in.size() > 1) y = e.op(Op::mul, {y, e.upcast(in[1])});
      if (in.size() > 2) y = e.op(Op::add, {y, e.upcast(in[2])});
      return e.cast(y, out);
    }
    case Op::gelu: {
      ValueId x = e.upcast(in[0]);
      if (attrs.has("approximate") && attrs.get_string("approximate") == "tanh") {
        // 0.5 x (1 + tanh(u)) is x * sigmoid(2u) = x / (1 + exp(-2u)), u = k (x + 0.044715 x^3):
        // the same function with no cancellation, and one exp where the vector tanhf costs
        // about three (glibc's libmvec, AVX2). Large negative x: exp overflows, x / inf = -0.
        ValueId cube = e.op(Op::mul, {e.op(Op::mul, {x, x}), x});
        ValueId poly = e.op(Op::add, {x, e.scalar(Op::mul, cube, 0.044715)});
        ValueId em2u = e.op(Op::exp, {e.scalar(Op::mul, poly, -2 * 0.7978845608028654)});
        return e.cast(e.op(Op::div, {x, e.scalar(Op::add, em2u, 1.0)}), out);
      }
      ValueId half_x = e.scalar(Op::mul, x, 0.5);
      ValueId inner = e.op(Op::erf, {e.scalar(Op::mul, x, 0.7071067811865476)});
      return e.cast(e.op(Op::mul, {half_x, e.scalar(Op::add, inner, 1.0)}), out);
    }
    case Op::linear: {
      if (node.attrs.has("epilogue")) return -1;  // a fused GPU product (fuse_gemm_epilogues)
      Attrs t;
      t.set_ints("dims", {1, 0});
      ValueId y = e.op(Op::matmul, {in[0], e.op(Op::permute, {in[1]}, t)});
      return in.size() > 2 ? e.op(Op::add, {y, in[2]}) : y;
    }
    default:
      return -1;
  }
}

}  // namespace

PassResult decompose_ops(const Graph& graph) {
  Rebuilder r(graph);
  Emitter e(r);
  bool changed = false;
  for (size_t n = 0; n < graph.nodes.size(); ++n) {
    const Node& node = graph.nodes[n];
    std::vector<ValueId> in;
    for (ValueId v : node.inputs) in.push_back(r.map(v));
    ValueId replacement = decompose(e, node, in);
    changed |= replacement >= 0;
    r.set(graph.node_value(n), replacement >= 0 ? replacement : r.copy_node(node));
  }
  if (!changed) return {graph, false};
  return {r.finish(graph.outputs), true};
}

}  // namespace kiln
