// Element types and the scalar value type shared by tensors, graphs and the API.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>

namespace kiln {

enum class DType : uint8_t { f32, f64, f16, bf16, i32, i64, bool_ };
inline constexpr int kNumDTypes = 7;

enum class Device : uint8_t { cpu, cuda };

// Short names as in the text format: f32 f64 f16 bf16 i32 i64 bool.
std::string_view dtype_name(DType dtype);
// Parses a short name; returns false when `name` is not one.
bool parse_dtype(std::string_view name, DType* dtype);
int64_t dtype_size(DType dtype);
bool is_floating(DType dtype);
bool is_integral(DType dtype);  // i32, i64 (not bool)
std::string_view device_name(Device device);

// A number given to an op next to tensors (`t * 0.5f`, `t + 1`). Like a Python number in
// PyTorch it takes part in type promotion by category only: an integer scalar never
// widens an integer tensor, a floating scalar turns an integer tensor into f32.
class Scalar {
 public:
  enum class Kind : uint8_t { boolean, integer, floating };

  Scalar() : kind_(Kind::integer), i_(0) {}
  template <class T, std::enable_if_t<std::is_arithmetic_v<T>, int> = 0>
  Scalar(T value) {  // NOLINT(google-explicit-constructor): scalars mix freely with tensors
    if constexpr (std::is_same_v<T, bool>) {
      kind_ = Kind::boolean;
      i_ = value ? 1 : 0;
    } else if constexpr (std::is_integral_v<T>) {
      kind_ = Kind::integer;
      i_ = static_cast<int64_t>(value);
    } else {
      kind_ = Kind::floating;
      d_ = static_cast<double>(value);
    }
  }

  Kind kind() const { return kind_; }
  bool is_floating() const { return kind_ == Kind::floating; }
  double to_double() const { return kind_ == Kind::floating ? d_ : static_cast<double>(i_); }
  int64_t to_int() const { return kind_ == Kind::floating ? static_cast<int64_t>(d_) : i_; }
  std::string to_string() const;

 private:
  Kind kind_;
  union {
    int64_t i_;
    double d_;
  };
};

}  // namespace kiln
