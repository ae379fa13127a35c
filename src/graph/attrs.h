// Attrs: an op's named, typed attributes (dims, keepdim, eps, dtype, the scalar operand of a
// binary op...). Kept sorted by name, so printing and comparison are canonical.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "graph/dim.h"
#include "kiln/dtype.h"

namespace kiln {

// Lists hold Dims, so a reshape target may name size symbols; plain int lists are constant.
using AttrValue = std::variant<bool, int64_t, double, std::string, DType, std::vector<Dim>>;

class Attrs {
 public:
  Attrs& set(const std::string& name, AttrValue value);
  Attrs& set_ints(const std::string& name, const std::vector<int64_t>& values);
  Attrs& set_scalar(const std::string& name, Scalar value);
  void erase(const std::string& name);

  const AttrValue* find(const std::string& name) const;
  bool has(const std::string& name) const { return find(name) != nullptr; }
  // Typed getters; they throw ShapeError naming the attribute when missing or mistyped.
  int64_t get_int(const std::string& name) const;
  int64_t get_int(const std::string& name, int64_t fallback) const;
  double get_double(const std::string& name) const;  // accepts an int too
  bool get_bool(const std::string& name, bool fallback) const;
  const std::string& get_string(const std::string& name) const;
  DType get_dtype(const std::string& name) const;
  const std::vector<Dim>& get_dims(const std::string& name) const;
  std::vector<int64_t> get_ints(const std::string& name) const;  // constant dims only
  // One size: an integer attribute (a constant), or a list of one Dim (`end=[s0]`, a
  // symbolic bound of a slice); set_dim stores a constant as an integer.
  Dim get_dim(const std::string& name) const;
  Attrs& set_dim(const std::string& name, const Dim& value);
  Scalar get_scalar(const std::string& name) const;
  std::optional<Scalar> find_scalar(const std::string& name) const;

  const std::vector<std::pair<std::string, AttrValue>>& items() const { return items_; }
  bool empty() const { return items_.empty(); }
  friend bool operator==(const Attrs& a, const Attrs& b) { return a.items_ == b.items_; }

 private:
  std::vector<std::pair<std::string, AttrValue>> items_;
};

// The text form of one value: 3, 2.5, 1e-05, true, "tanh", bf16, [0, s0].
std::string attr_value_string(const AttrValue& value);
// Shortest text that reads back as the same double, always with '.', 'e', inf or nan.
std::string double_string(double value);

}  // namespace kiln
