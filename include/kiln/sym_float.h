// SymFloat: a floating-point argument of a compiled function, as torch.compile treats a
// Python float. Outside a trace it is a plain number. A compiled function whose parameter is
// declared `SymFloat` (not `double`: C++ arithmetic on a double is invisible to the tracer)
// gets its first value specialized, like any scalar; once a call passes another value, the
// argument becomes a graph scalar (an f64 input of the graph, "automatic dynamic"), and one
// graph serves every value from then on.
//
// While traced, a SymFloat is a 0-d f64 value of the graph. Arithmetic with numbers and other
// SymFloats, sqrt/exp/log/pow, and ops with tensors (operators, the binary functions,
// masked_fill, clamp, full and the in-place ops of include/kiln/tensor.h) stay in the graph.
// With a tensor it acts as a number does (a "wrapped number" in PyTorch's type promotion): it
// never changes the tensor's dtype, and makes an integer tensor's result f32. Anything that
// needs its value as a double (guard_double(), a comparison with `<`, an explicit cast)
// specializes it: the graph then serves only calls with the same value, as with a `double`.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

namespace kiln {

class Tensor;
class TensorImpl;

class SymFloat {
 public:
  SymFloat(double value = 0.0) : value_(value) {}  // NOLINT: implicit, as a number

  bool is_symbolic() const { return traced_ != nullptr; }
  // The value, when it is not a graph scalar.
  std::optional<double> maybe_as_double() const {
    return is_symbolic() ? std::nullopt : std::optional<double>(value_);
  }
  // The value; while traced, this specializes the arguments it came from (their values are
  // guarded). Throws for a SymFloat of a trace that has ended.
  double guard_double() const;
  explicit operator double() const { return guard_double(); }
  // The value this call traced with (the value itself when not symbolic).
  double hint() const { return value_; }
  // The value as a 0-d f64 tensor: the graph value while traced.
  Tensor tensor() const;
  // As a tensor operand of `like`'s op: the 0-d value in like's dtype if that is floating,
  // else f32 (what a number operand gives).
  Tensor operand_for(const Tensor& like) const;
  std::string to_string()
      const;  // "0.5", or "0.5 (a graph scalar of argument scalar 1; ...)" while traced

  // For kiln's compile(): argument `slot`'s traced value (`value`: a 0-d f64 graph input).
  static SymFloat traced(Tensor value, double hint, int32_t slot);
  // The scalar arguments this value depends on.
  const std::vector<int32_t>& sources() const { return sources_; }

  friend SymFloat operator+(const SymFloat& a, const SymFloat& b);
  friend SymFloat operator-(const SymFloat& a, const SymFloat& b);
  friend SymFloat operator*(const SymFloat& a, const SymFloat& b);
  friend SymFloat operator/(const SymFloat& a, const SymFloat& b);
  friend SymFloat operator-(const SymFloat& a);
  friend SymFloat sqrt(const SymFloat& a);
  friend SymFloat exp(const SymFloat& a);
  friend SymFloat log(const SymFloat& a);
  friend SymFloat pow(const SymFloat& a, const SymFloat& b);
  // Comparisons need the value: they specialize a traced SymFloat.
  friend bool operator==(const SymFloat& a, const SymFloat& b) {
    return a.guard_double() == b.guard_double();
  }
  friend bool operator!=(const SymFloat& a, const SymFloat& b) { return !(a == b); }
  friend bool operator<(const SymFloat& a, const SymFloat& b) {
    return a.guard_double() < b.guard_double();
  }
  friend bool operator>(const SymFloat& a, const SymFloat& b) { return b < a; }
  friend bool operator<=(const SymFloat& a, const SymFloat& b) {
    return a.guard_double() <= b.guard_double();
  }
  friend bool operator>=(const SymFloat& a, const SymFloat& b) { return b <= a; }

 private:
  // A value computed from `traced`, with the sources of both operands.
  static SymFloat derived(std::shared_ptr<TensorImpl> traced, double hint, const SymFloat& a,
                          const SymFloat& b);

  double value_;
  std::shared_ptr<TensorImpl> traced_;  // the 0-d f64 graph value while traced
  std::vector<int32_t> sources_;        // the scalar arguments it depends on
};

namespace detail {
// Overloads taking a SymFloat are templates constrained to it, so that a plain number still
// picks the Scalar overload (both are one conversion away from a double).
template <class S>
using IfSymFloat = std::enable_if_t<std::is_same_v<S, SymFloat>, int>;
}  // namespace detail

}  // namespace kiln
