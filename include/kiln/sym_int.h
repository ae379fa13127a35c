// SymInt: a size, as libtorch's c10::SymInt. Outside a trace, and for every dim compile() did
// not mark dynamic, it is a plain number. While compile() traces, the size of a dim marked
// dynamic is symbolic: `coeff * s<k>`, where s<k> is bound at each call. Tensor::size()
// returns one; view, reshape, expand and the factories take lists of them, so that
// `x.view({x.size(0) * 2, 32})` and `zeros({x.size(0), 2})` keep the batch symbolic.
//
// Symbolic sizes are multiples of one symbol: `*` and exact `/` by a number, and `+`/`-` of
// multiples of the same symbol, stay symbolic; anything else (`s0 + 1`, `s0 * s1`, `s0 / 3`
// when 3 does not divide the coefficient) is a ShapeError that names the sizes. A symbolic
// size cannot become an `int64_t` (its value changes from call to call), nor be compared
// unless the answer is known (s0 == s0): both throw, saying which size and how to avoid it.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <iosfwd>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

namespace kiln {

class SymInt {
 public:
  SymInt(int64_t value = 0) : value_(value) {}  // NOLINT: implicit, as libtorch's

  bool is_symbolic() const { return sym_ >= 0; }
  // The value, when it is not symbolic.
  std::optional<int64_t> maybe_as_int() const {
    return is_symbolic() ? std::nullopt : std::optional<int64_t>(value_);
  }
  // The value; throws ShapeError naming the size when it is symbolic.
  int64_t expect_int() const;
  operator int64_t() const { return expect_int(); }  // NOLINT: sizes read as numbers
  // "8", "s0", "2*s0".
  std::string to_string() const;

  // For kiln's tracer: `coeff * s<sym>` of trace `session`, `hint` at trace time.
  static SymInt symbolic(int32_t sym, int64_t coeff, int64_t hint, uint64_t session);
  int32_t symbol() const { return sym_; }
  int64_t coeff() const { return is_symbolic() ? coeff_ : value_; }
  // The value while tracing (the value itself when not symbolic).
  int64_t hint() const { return value_; }
  uint64_t session() const { return session_; }

  friend SymInt operator*(const SymInt& a, const SymInt& b);
  friend SymInt operator/(const SymInt& a, const SymInt& b);
  friend SymInt operator+(const SymInt& a, const SymInt& b);
  friend SymInt operator-(const SymInt& a, const SymInt& b);
  // -1, 0 or 1 when the order is known; throws ShapeError otherwise.
  friend int compare(const SymInt& a, const SymInt& b, const char* op);

 private:
  int64_t value_;  // the value, or the hint of a symbolic size
  int64_t coeff_ = 0;
  int32_t sym_ = -1;
  uint64_t session_ = 0;
};

// Integer operands of any width, without the ambiguity of SymInt's two implicit conversions.
namespace detail {
template <class I>
using IfInteger = std::enable_if_t<std::is_integral_v<I> && !std::is_same_v<I, bool>, int>;
}  // namespace detail

#define KILN_SYMINT_OP(OP)                       \
  template <class I, detail::IfInteger<I> = 0>   \
  SymInt operator OP(const SymInt& a, I b) {     \
    return a OP SymInt(static_cast<int64_t>(b)); \
  }                                              \
  template <class I, detail::IfInteger<I> = 0>   \
  SymInt operator OP(I a, const SymInt& b) {     \
    return SymInt(static_cast<int64_t>(a)) OP b; \
  }
KILN_SYMINT_OP(*)
KILN_SYMINT_OP(/)
KILN_SYMINT_OP(+)
KILN_SYMINT_OP(-)
#undef KILN_SYMINT_OP

#define KILN_SYMINT_CMP(OP)                                                                     \
  inline bool operator OP(const SymInt& a, const SymInt& b) { return compare(a, b, #OP) OP 0; } \
  template <class I, detail::IfInteger<I> = 0>                                                  \
  bool operator OP(const SymInt& a, I b) {                                                      \
    return compare(a, SymInt(static_cast<int64_t>(b)), #OP) OP 0;                               \
  }                                                                                             \
  template <class I, detail::IfInteger<I> = 0>                                                  \
  bool operator OP(I a, const SymInt& b) {                                                      \
    return compare(SymInt(static_cast<int64_t>(a)), b, #OP) OP 0;                               \
  }
KILN_SYMINT_CMP(==)
KILN_SYMINT_CMP(!=)
KILN_SYMINT_CMP(<)
KILN_SYMINT_CMP(<=)
KILN_SYMINT_CMP(>)
KILN_SYMINT_CMP(>=)
#undef KILN_SYMINT_CMP

std::ostream& operator<<(std::ostream& os, const SymInt& size);

// The sizes an op takes (view, reshape, expand, the factories): a braced list of numbers or
// SymInts, a Shape, or a vector of SymInts. One parameter type, so that `view({10, 32})` is
// never ambiguous between overloads.
class SymIntList {
 public:
  SymIntList() = default;
  SymIntList(std::initializer_list<SymInt> sizes) : sizes_(sizes) {}  // NOLINT
  SymIntList(const std::vector<SymInt>& sizes) : sizes_(sizes) {}     // NOLINT
  SymIntList(const std::vector<int64_t>& sizes)                       // NOLINT
      : sizes_(sizes.begin(), sizes.end()) {}

  size_t size() const { return sizes_.size(); }
  const SymInt& operator[](size_t i) const { return sizes_[i]; }
  std::vector<SymInt>::const_iterator begin() const { return sizes_.begin(); }
  std::vector<SymInt>::const_iterator end() const { return sizes_.end(); }
  bool is_symbolic() const;
  // The sizes as numbers: the values, or the hints of symbolic sizes (for messages).
  std::vector<int64_t> hints() const;
  std::string to_string() const;  // [s0, 32]

 private:
  std::vector<SymInt> sizes_;
};

}  // namespace kiln
