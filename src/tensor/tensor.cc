// Tensor's storage side: shapes, strides, element access. The methods that are ops (views,
// conversions) dispatch through call_op and live in src/eager/tensor_views.cc, the math in
// src/eager/api_ops.cc.
#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "graph/infer.h"
#include "kiln/error.h"
#include "kiln/ops.h"
#include "support/limits.h"
#include "tensor/element.h"
#include "tensor/tensor_impl.h"

namespace kiln {

Shape contiguous_strides(const Shape& sizes) {
  Shape strides(sizes.size());
  int64_t s = 1;
  for (size_t i = sizes.size(); i-- > 0;) {
    strides[i] = s;
    s *= std::max<int64_t>(sizes[i], 1);
  }
  return strides;
}

int64_t shape_numel(const Shape& sizes) {
  int64_t n = 1;
  for (int64_t d : sizes)
    if (__builtin_mul_overflow(n, d, &n))
      throw ShapeError(fmt::format("the element count of shape {} overflows", shape_string(sizes)));
  return n;
}

void check_tensor_shape(const Shape& sizes) {
  if (static_cast<int64_t>(sizes.size()) > limits::kMaxRank)
    throw ShapeError(fmt::format("shape {} has {} dims; kiln's limit is {}", shape_string(sizes),
                                 sizes.size(), limits::kMaxRank));
  for (int64_t d : sizes)
    if (d < 0) throw ShapeError(fmt::format("negative size in shape {}", shape_string(sizes)));
  if (shape_numel(sizes) > limits::kMaxElements)
    throw ShapeError(fmt::format("shape {} has more than {} elements, kiln's limit for one tensor",
                                 shape_string(sizes), limits::kMaxElements));
}

Tensor make_tensor(const Shape& sizes, DType dtype, Device device) {
  check_tensor_shape(sizes);
  auto impl = std::make_shared<TensorImpl>();
  // At most 2^48 elements of at most 8 bytes: the byte count cannot overflow.
  impl->storage = allocate(shape_numel(sizes) * static_cast<int64_t>(dtype_size(dtype)), device);
  impl->device = device;
  impl->sizes = sizes;
  impl->strides = contiguous_strides(sizes);
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

Tensor make_view(const Tensor& base, Shape sizes, Shape strides, int64_t offset) {
  check_tensor_shape(sizes);
  auto impl = std::make_shared<TensorImpl>(*base.impl());
  impl->sizes = std::move(sizes);
  impl->strides = std::move(strides);
  impl->offset = offset;
  impl->dynamic_dims = 0;
  impl->requires_grad = false;  // a view's history is its view op's (src/autograd)
  impl->autograd = nullptr;
  impl->history_epoch = impl->storage ? impl->storage->history_epoch : 0;
  return Tensor(std::move(impl));
}

Tensor alias_without_history(const Tensor& t) {
  auto impl = std::make_shared<TensorImpl>(*t.impl());
  impl->requires_grad = false;
  impl->autograd = nullptr;
  impl->history_epoch = impl->storage ? impl->storage->history_epoch : 0;
  return Tensor(std::move(impl));
}

Tensor from_blob(void* data, const Shape& sizes, DType dtype, std::function<void(void*)> deleter) {
  check_tensor_shape(sizes);
  return from_blob(data, sizes, contiguous_strides(sizes), dtype, std::move(deleter));
}

Tensor from_blob(void* data, const Shape& sizes, const Shape& strides, DType dtype,
                 std::function<void(void*)> deleter) {
  check_tensor_shape(sizes);
  if (strides.size() != sizes.size())
    throw ShapeError(
        fmt::format("from_blob: {} strides for {} sizes", strides.size(), sizes.size()));
  if (!data && shape_numel(sizes) > 0) throw Error("from_blob: data is null");
  // The elements reach [0, extent): checked, so a stride from outside cannot overflow.
  int64_t extent = shape_numel(sizes) > 0 ? 1 : 0;
  for (size_t d = 0; d < sizes.size(); ++d) {
    if (strides[d] < 0)
      throw ShapeError(
          fmt::format("from_blob: negative stride {} in {}", strides[d], shape_string(strides)));
    int64_t reach = 0;
    if (sizes[d] > 0 && (__builtin_mul_overflow(sizes[d] - 1, strides[d], &reach) ||
                         __builtin_add_overflow(extent, reach, &extent)))
      throw ShapeError(fmt::format("from_blob: sizes {} with strides {} overflow",
                                   shape_string(sizes), shape_string(strides)));
  }
  int64_t nbytes = 0;
  if (__builtin_mul_overflow(extent, dtype_size(dtype), &nbytes))
    throw ShapeError(
        fmt::format("from_blob: {} elements of {} overflow", extent, dtype_name(dtype)));
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<Storage>(data, nbytes, std::move(deleter));
  impl->sizes = sizes;
  impl->strides = strides;
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

Tensor detail::copy_of_elements(const void* data, int64_t count, DType dtype, const Shape& shape) {
  check_tensor_shape(shape);
  if (shape_numel(shape) != count)
    throw ShapeError(fmt::format("from_vector: {} values for shape {} ({} elements)", count,
                                 shape_string(shape), shape_numel(shape)));
  Tensor out = make_tensor(shape, dtype);
  if (count > 0)
    std::memcpy(out.impl()->data_ptr(), data, static_cast<size_t>(count * dtype_size(dtype)));
  return out;
}

void require_host(const Tensor& t, const char* what) {
  require_data(t, what);
  if (t.device() != Device::cpu)
    throw Error(fmt::format("{}: the tensor is on {}; copy it to the host first (.cpu())", what,
                            device_name(t.device())));
}

void require_data(const Tensor& t, const char* what) {
  if (!t.defined()) throw Error(fmt::format("{}: the tensor is undefined", what));
  if (t.impl()->is_traced())
    throw Error(
        fmt::format("{}: the tensor is being traced by compile(); its values do not "
                    "exist until the compiled function runs",
                    what));
}

namespace {
const TensorImpl& checked(const std::shared_ptr<TensorImpl>& impl) {
  if (!impl) throw Error("use of an undefined (default-constructed) tensor");
  return *impl;
}
}  // namespace

const Shape& Tensor::sizes() const { return checked(impl_).sizes; }
const Shape& Tensor::strides() const { return checked(impl_).strides; }
int64_t Tensor::offset() const { return checked(impl_).offset; }
int64_t Tensor::dim() const { return static_cast<int64_t>(sizes().size()); }
int64_t Tensor::numel() const { return shape_numel(sizes()); }
DType Tensor::dtype() const { return checked(impl_).dtype; }
Device Tensor::device() const { return checked(impl_).device; }

bool Tensor::is_contiguous() const {
  const Shape& s = sizes();
  const Shape& st = strides();
  int64_t expected = 1;
  for (size_t i = s.size(); i-- > 0;) {
    if (s[i] == 1) continue;
    if (st[i] != expected) return false;
    expected *= s[i];
  }
  return true;
}

void* Tensor::checked_data(size_t element_size, int tag, bool write) const {
  require_host(*this, "data()");
  bool ok = tag == -2 ? (dtype() == DType::f16 || dtype() == DType::bf16)
                      : tag == static_cast<int>(dtype());
  if (!ok || static_cast<int64_t>(element_size) != dtype_size(dtype()))
    throw Error(
        fmt::format("data<T>(): T does not match the tensor's dtype {}", dtype_name(dtype())));
  if (!is_contiguous())
    throw Error("data<T>(): the tensor is not contiguous; call .contiguous() first");
  if (write) impl_->storage->bump_version();
  return impl_->data_ptr();
}

void* Tensor::data_ptr() const {
  require_data(*this, "data_ptr()");
  impl_->storage->bump_version();
  return impl_->data_ptr();
}

const void* Tensor::const_data_ptr() const {
  require_data(*this, "const_data_ptr()");
  return impl_->data_ptr();
}

uint64_t Tensor::_version() const {
  require_data(*this, "_version()");
  return impl_->storage->version();
}

double Tensor::item_double() const {
  require_data(*this, "item()");
  if (device() != Device::cpu) return cpu().item_double();
  if (numel() != 1) throw Error(fmt::format("item(): the tensor has {} elements, not 1", numel()));
  return load_double(impl_->data_ptr(), dtype());
}

double Tensor::at(const Shape& index) const {
  require_data(*this, "at()");
  if (device() != Device::cpu) return cpu().at(index);
  if (static_cast<int64_t>(index.size()) != dim())
    throw Error(fmt::format("at(): index {} has {} dims, the tensor has {}", shape_string(index),
                            index.size(), dim()));
  int64_t offset = 0;
  for (size_t i = 0; i < index.size(); ++i) {
    if (index[i] < 0 || index[i] >= sizes()[i])
      throw Error(fmt::format("at(): index {} is out of bounds for shape {}", shape_string(index),
                              shape_string(sizes())));
    offset += index[i] * strides()[i];
  }
  return load_double(impl_->data_ptr() + offset * dtype_size(dtype()), dtype());
}

}  // namespace kiln
