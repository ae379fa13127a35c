#include "graph/attrs.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "kiln/error.h"

namespace kiln {

Attrs& Attrs::set(const std::string& name, AttrValue value) {
  auto it = std::lower_bound(items_.begin(), items_.end(), name,
                             [](const auto& item, const std::string& n) { return item.first < n; });
  if (it != items_.end() && it->first == name) {
    it->second = std::move(value);
  } else {
    items_.insert(it, {name, std::move(value)});
  }
  return *this;
}

Attrs& Attrs::set_ints(const std::string& name, const std::vector<int64_t>& values) {
  return set(name, const_shape(values));
}

Attrs& Attrs::set_scalar(const std::string& name, Scalar value) {
  switch (value.kind()) {
    case Scalar::Kind::boolean:
      return set(name, value.to_int() != 0);
    case Scalar::Kind::integer:
      return set(name, value.to_int());
    case Scalar::Kind::floating:
      return set(name, value.to_double());
  }
  return *this;
}

void Attrs::erase(const std::string& name) {
  std::erase_if(items_, [&](const auto& item) { return item.first == name; });
}

const AttrValue* Attrs::find(const std::string& name) const {
  auto it = std::lower_bound(items_.begin(), items_.end(), name,
                             [](const auto& item, const std::string& n) { return item.first < n; });
  return it != items_.end() && it->first == name ? &it->second : nullptr;
}

namespace {
template <class T>
const T& get_typed(const Attrs& attrs, const std::string& name, const char* type) {
  const AttrValue* v = attrs.find(name);
  if (!v) throw ShapeError(fmt::format("missing attribute '{}'", name));
  if (const T* t = std::get_if<T>(v)) return *t;
  throw ShapeError(
      fmt::format("attribute '{}' must be {}, got {}", name, type, attr_value_string(*v)));
}
}  // namespace

int64_t Attrs::get_int(const std::string& name) const {
  return get_typed<int64_t>(*this, name, "an integer");
}
int64_t Attrs::get_int(const std::string& name, int64_t fallback) const {
  return has(name) ? get_int(name) : fallback;
}
double Attrs::get_double(const std::string& name) const {
  const AttrValue* v = find(name);
  if (v && std::holds_alternative<int64_t>(*v)) return static_cast<double>(std::get<int64_t>(*v));
  return get_typed<double>(*this, name, "a number");
}
bool Attrs::get_bool(const std::string& name, bool fallback) const {
  return has(name) ? get_typed<bool>(*this, name, "true or false") : fallback;
}
const std::string& Attrs::get_string(const std::string& name) const {
  return get_typed<std::string>(*this, name, "a string");
}
DType Attrs::get_dtype(const std::string& name) const {
  return get_typed<DType>(*this, name, "a dtype");
}
const std::vector<Dim>& Attrs::get_dims(const std::string& name) const {
  return get_typed<std::vector<Dim>>(*this, name, "a list");
}
Dim Attrs::get_dim(const std::string& name) const {
  const AttrValue* v = find(name);
  if (v && std::holds_alternative<std::vector<Dim>>(*v)) {
    const std::vector<Dim>& dims = std::get<std::vector<Dim>>(*v);
    if (dims.size() != 1)
      throw ShapeError(
          fmt::format("attribute '{}' must be one size, got {}", name, attr_value_string(*v)));
    return dims[0];
  }
  return Dim::constant(get_int(name));
}
Attrs& Attrs::set_dim(const std::string& name, const Dim& value) {
  if (value.is_const()) return set(name, value.coeff);
  return set(name, std::vector<Dim>{value});
}
std::vector<int64_t> Attrs::get_ints(const std::string& name) const {
  std::vector<int64_t> out;
  for (const Dim& d : get_dims(name)) {
    if (!d.is_const())
      throw ShapeError(fmt::format("attribute '{}' must be constant, got {}", name, d.to_string()));
    out.push_back(d.coeff);
  }
  return out;
}

std::optional<Scalar> Attrs::find_scalar(const std::string& name) const {
  const AttrValue* v = find(name);
  if (!v) return std::nullopt;
  if (auto* b = std::get_if<bool>(v)) return Scalar(*b);
  if (auto* i = std::get_if<int64_t>(v)) return Scalar(*i);
  if (auto* d = std::get_if<double>(v)) return Scalar(*d);
  throw ShapeError(
      fmt::format("attribute '{}' must be a number, got {}", name, attr_value_string(*v)));
}
Scalar Attrs::get_scalar(const std::string& name) const {
  auto s = find_scalar(name);
  if (!s) throw ShapeError(fmt::format("missing attribute '{}'", name));
  return *s;
}

std::string double_string(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  std::string s = fmt::format("{}", value);
  if (s.find_first_of(".e") == std::string::npos) s += ".0";
  return s;
}

std::string attr_value_string(const AttrValue& value) {
  struct Visitor {
    std::string operator()(bool b) const { return b ? "true" : "false"; }
    std::string operator()(int64_t i) const { return std::to_string(i); }
    std::string operator()(double d) const { return double_string(d); }
    std::string operator()(const std::string& s) const {
      std::string out = "\"";
      for (char c : s) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
      }
      return out + "\"";
    }
    std::string operator()(DType t) const { return std::string(dtype_name(t)); }
    std::string operator()(const std::vector<Dim>& dims) const { return shape_string(dims); }
  };
  return std::visit(Visitor{}, value);
}

}  // namespace kiln
