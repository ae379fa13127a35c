// Printing tensors as PyTorch does, abbreviated past 1000 elements.
#include <fmt/format.h>

#include <ostream>

#include "graph/dim.h"
#include "tensor/tensor_impl.h"

namespace kiln {

namespace {

constexpr int64_t kSummarizeAbove = 1000;
constexpr int64_t kEdgeItems = 3;

std::string element_string(const Tensor& t, const Shape& index) {
  double v = t.at(index);
  if (t.dtype() == DType::bool_) return v != 0 ? "True" : "False";
  if (!is_floating(t.dtype())) return fmt::format("{}", static_cast<int64_t>(v));
  return fmt::format("{:.4f}", v);
}

void print_dim(std::string& out, const Tensor& t, Shape& index, size_t d, bool summarize) {
  if (d == index.size()) {
    out += element_string(t, index);
    return;
  }
  out += '[';
  int64_t n = t.sizes()[d];
  for (int64_t i = 0; i < n; ++i) {
    if (summarize && n > 2 * kEdgeItems && i == kEdgeItems) {
      out += "..., ";
      i = n - kEdgeItems;
    }
    index[d] = i;
    print_dim(out, t, index, d + 1, summarize);
    if (i + 1 < n) out += d + 1 == index.size() ? ", " : ",\n" + std::string(d + 8, ' ');
  }
  out += ']';
}

}  // namespace

std::string Tensor::to_string() const {
  if (!defined()) return "tensor(undefined)";
  std::string dtype = fmt::format("dtype={}", dtype_name(this->dtype()));
  if (impl_->is_traced())
    return fmt::format("tensor(<traced>, shape={}, {})", shape_string(sizes()), dtype);
  if (device() != Device::cpu) {
    std::string host = cpu().to_string();
    return host.substr(0, host.size() - 1) + fmt::format(", device={})", device_name(device()));
  }
  std::string out = "tensor(";
  Shape index(sizes().size(), 0);
  if (numel() == 0) {
    out += "[]";
  } else {
    print_dim(out, *this, index, 0, numel() > kSummarizeAbove);
  }
  return out + fmt::format(", shape={}, {})", shape_string(sizes()), dtype);
}

std::ostream& operator<<(std::ostream& os, const Tensor& tensor) {
  return os << tensor.to_string();
}

}  // namespace kiln
