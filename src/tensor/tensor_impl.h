// TensorImpl: what a kiln::Tensor refers to. A tensor with storage is a real (eager) tensor;
// one without storage stands for a value being traced (trace_value names it in the graph of
// the trace session `trace_session`, trace_alias its place among the trace's mutable
// tensors), and has sizes and eager's strides but no data.
#pragma once

#include <cstdint>
#include <memory>

#include "kiln/tensor.h"
#include "tensor/allocator.h"

namespace kiln {

struct AutogradMeta;  // src/autograd/graph.h

class TensorImpl {
 public:
  std::shared_ptr<Storage> storage;
  Shape sizes;
  Shape strides;  // in elements
  int64_t offset = 0;
  DType dtype = DType::f32;
  Device device = Device::cpu;
  uint64_t dynamic_dims = 0;  // bit d set: dim d was marked dynamic
  int32_t trace_value = -1;
  int32_t trace_alias = -1;
  uint64_t trace_session = 0;
  // Autograd (src/autograd): set for a leaf that requires grad and for every result computed
  // from one while grad mode is on; `autograd` holds its history and gradient.
  bool requires_grad = false;
  std::shared_ptr<AutogradMeta> autograd;
  // The storage's history_epoch (allocator.h) as of this tensor's history: behind it, an
  // in-place op gave another view of the storage new history and this one is stale.
  uint64_t history_epoch = 0;
  bool history_stale() const { return storage && storage->history_epoch != history_epoch; }

  bool is_traced() const { return trace_value >= 0; }
  char* data_ptr() const {
    return static_cast<char*>(storage->data()) + offset * dtype_size(dtype);
  }
};

Shape contiguous_strides(const Shape& sizes);
// Throws ShapeError unless `sizes` is a shape a tensor may have: at most limits::kMaxRank
// dims, none negative, at most limits::kMaxElements elements.
void check_tensor_shape(const Shape& sizes);
int64_t shape_numel(const Shape& sizes);
// A fresh contiguous tensor (uninitialized data) on `device`.
Tensor make_tensor(const Shape& sizes, DType dtype, Device device = Device::cpu);
// A view of `base`'s storage with other sizes/strides/offset.
Tensor make_view(const Tensor& base, Shape sizes, Shape strides, int64_t offset);
// Another TensorImpl of the same elements (or traced value), without autograd history:
// detach(), and what autograd saves for backward.
Tensor alias_without_history(const Tensor& t);
// Throws Error naming `what` unless `t` lives in host memory (data<T>(), at(), printing).
void require_host(const Tensor& t, const char* what);
// Throws when `t` is a traced value (its data does not exist yet); `what` names the use.
void require_data(const Tensor& t, const char* what);

}  // namespace kiln
