#include <array>

#include "graph/attrs.h"
#include "kiln/dtype.h"

namespace kiln {

namespace {
constexpr std::array<std::string_view, kNumDTypes> kNames = {"f32", "f64", "f16", "bf16",
                                                             "i32", "i64", "bool"};
constexpr std::array<int64_t, kNumDTypes> kSizes = {4, 8, 2, 2, 4, 8, 1};
}  // namespace

std::string_view dtype_name(DType dtype) { return kNames[static_cast<size_t>(dtype)]; }

bool parse_dtype(std::string_view name, DType* dtype) {
  for (size_t i = 0; i < kNames.size(); ++i) {
    if (kNames[i] == name) {
      *dtype = static_cast<DType>(i);
      return true;
    }
  }
  return false;
}

int64_t dtype_size(DType dtype) { return kSizes[static_cast<size_t>(dtype)]; }

bool is_floating(DType d) {
  return d == DType::f32 || d == DType::f64 || d == DType::f16 || d == DType::bf16;
}
bool is_integral(DType d) { return d == DType::i32 || d == DType::i64; }

std::string_view device_name(Device device) { return device == Device::cpu ? "cpu" : "cuda"; }

std::string Scalar::to_string() const {
  switch (kind_) {
    case Kind::boolean:
      return i_ ? "true" : "false";
    case Kind::integer:
      return std::to_string(i_);
    case Kind::floating:
      return double_string(d_);
  }
  return "?";
}

}  // namespace kiln
