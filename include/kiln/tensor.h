// kiln::Tensor: a reference-counted view (sizes, strides, offset, dtype) of a storage.
// Views share storage; ops run at once through the eager interpreter, or are recorded into a
// graph while `compile()` traces a function. Copying a Tensor copies the reference.
#pragma once

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "kiln/dtype.h"
#include "kiln/sym_float.h"
#include "kiln/sym_int.h"

namespace kiln {

class TensorImpl;
using Shape = std::vector<int64_t>;

template <class T>
struct DTypeOf;
template <>
struct DTypeOf<float> {
  static constexpr DType value = DType::f32;
};
template <>
struct DTypeOf<double> {
  static constexpr DType value = DType::f64;
};
template <>
struct DTypeOf<int32_t> {
  static constexpr DType value = DType::i32;
};
template <>
struct DTypeOf<int64_t> {
  static constexpr DType value = DType::i64;
};
template <>
struct DTypeOf<bool> {
  static constexpr DType value = DType::bool_;
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  bool defined() const { return impl_ != nullptr; }
  const Shape& sizes() const;
  const Shape& shape() const { return sizes(); }
  const Shape& strides() const;
  int64_t offset() const;
  // Dim `dim`'s size: while compile() traces, a symbolic SymInt for a dim marked dynamic
  // (include/kiln/sym_int.h), else a number. sizes() gives the numbers (the trace-time ones).
  SymInt size(int64_t dim) const;
  std::vector<SymInt> sym_sizes() const;
  int64_t dim() const;
  int64_t numel() const;
  DType dtype() const;
  Device device() const;
  bool is_contiguous() const;

  // The first element of a contiguous CPU tensor (Error for a GPU tensor: copy it with cpu()) of
  // element type T (uint16_t for f16/bf16). data<T>() is for writing: it counts as a write to
  // the tensor's storage (its version goes up, so a compiled function that froze this tensor
  // recompiles); const_data<T>() reads and changes nothing, as PyTorch's const_data_ptr.
  template <class T>
  T* data() const {
    return static_cast<T*>(checked_data(sizeof(T), dtype_tag<T>(), /*write=*/true));
  }
  template <class T>
  const T* const_data() const {
    return static_cast<const T*>(checked_data(sizeof(T), dtype_tag<T>(), /*write=*/false));
  }
  // The address of the first element (host or device memory, any strides); data_ptr() counts
  // as a write, as data<T>() does.
  void* data_ptr() const;
  const void* const_data_ptr() const;
  // The storage's version: bumped by every in-place op, copy_, data<T>() / data_ptr() and
  // compiled write-back, shared by all views of one storage (PyTorch's _version).
  uint64_t _version() const;
  // The value of a one-element tensor.
  template <class T>
  T item() const {
    return static_cast<T>(item_double());
  }
  double item_double() const;
  // Element at `index` (any strides), converted to double; for tests and printing.
  double at(const Shape& index) const;

  // Views: share storage with *this.
  // The target sizes may hold one -1 (the remaining elements) and SymInts; a number equal to
  // a dynamic dim's trace-time size at the same position keeps that dim dynamic.
  Tensor view(const SymIntList& shape) const;
  Tensor reshape(const SymIntList& shape) const;  // a view when strides allow, else a copy
  Tensor permute(const Shape& dims) const;
  Tensor transpose(int64_t dim0, int64_t dim1) const;
  Tensor t() const { return transpose(0, 1); }
  // Bounds may be SymInts while tracing (cos.narrow(0, 0, x.size(1)), h.narrow(0, n, n) of a
  // [2*s0] h with n = h.size(0) / 2): a length of one size symbol, step 1; see README.
  Tensor narrow(int64_t dim, const SymInt& start, const SymInt& length) const;
  Tensor slice(int64_t dim, std::optional<SymInt> start = std::nullopt,
               std::optional<SymInt> end = std::nullopt, int64_t step = 1) const;
  Tensor expand(const SymIntList& shape) const;  // -1 keeps a dim
  Tensor squeeze() const;
  Tensor squeeze(int64_t dim) const;
  Tensor unsqueeze(int64_t dim) const;
  Tensor flatten(int64_t start_dim = 0, int64_t end_dim = -1) const;

  Tensor contiguous() const;
  Tensor to(DType dtype) const;
  // A copy on `device` (*this when it is already there): host↔GPU copies.
  Tensor to(Device device) const;
  Tensor cuda() const { return to(Device::cuda); }
  Tensor cpu() const { return to(Device::cpu); }
  Tensor clone() const;

  // Math, named as Tensor.X in PyTorch.
  Tensor neg() const;
  Tensor abs() const;
  Tensor exp() const;
  Tensor log() const;
  Tensor log1p() const;
  Tensor sqrt() const;
  Tensor rsqrt() const;
  Tensor sin() const;
  Tensor cos() const;
  Tensor tan() const;
  Tensor tanh() const;
  Tensor sigmoid() const;
  Tensor relu() const;
  Tensor erf() const;
  Tensor floor() const;
  Tensor ceil() const;
  Tensor round() const;
  Tensor sign() const;
  Tensor reciprocal() const;
  Tensor isnan() const;
  Tensor logical_not() const;
  Tensor pow(const Tensor& exponent) const;
  Tensor pow(Scalar exponent) const;
  Tensor clamp(std::optional<Scalar> min, std::optional<Scalar> max) const;
  Tensor masked_fill(const Tensor& mask, Scalar value) const;
  Tensor matmul(const Tensor& other) const;

  Tensor sum(const Shape& dims = {}, bool keepdim = false) const;
  Tensor mean(const Shape& dims = {}, bool keepdim = false) const;
  Tensor amax(const Shape& dims = {}, bool keepdim = false) const;
  Tensor amin(const Shape& dims = {}, bool keepdim = false) const;
  Tensor prod(int64_t dim, bool keepdim = false) const;
  Tensor argmax(std::optional<int64_t> dim = std::nullopt, bool keepdim = false) const;
  Tensor argmin(std::optional<int64_t> dim = std::nullopt, bool keepdim = false) const;
  Tensor var(const Shape& dims = {}, int64_t correction = 1, bool keepdim = false) const;
  Tensor std(const Shape& dims = {}, int64_t correction = 1, bool keepdim = false) const;
  Tensor logsumexp(const Shape& dims, bool keepdim = false) const;
  Tensor softmax(int64_t dim) const;
  Tensor log_softmax(int64_t dim) const;

  // In-place ops, as PyTorch's: each writes its result into this tensor's elements (a view
  // writes into its base), converted to its dtype (a result that cannot be converted, e.g. a
  // float into an integer tensor, is an Error), and returns *this. add_/sub_ scale `other`
  // by `alpha` first. Under compile() they are functionalized: the graph stays pure and the
  // compiled function writes the new values back into its inputs and captured tensors.
  const Tensor& add_(const Tensor& other, Scalar alpha = 1) const;
  const Tensor& add_(Scalar other, Scalar alpha = 1) const;
  const Tensor& sub_(const Tensor& other, Scalar alpha = 1) const;
  const Tensor& sub_(Scalar other, Scalar alpha = 1) const;
  const Tensor& mul_(const Tensor& other) const;
  const Tensor& mul_(Scalar other) const;
  const Tensor& div_(const Tensor& other) const;
  const Tensor& div_(Scalar other) const;
  const Tensor& copy_(const Tensor& src) const;  // src broadcast to this tensor's shape
  const Tensor& fill_(Scalar value) const;
  const Tensor& zero_() const;
  const Tensor& clamp_(std::optional<Scalar> min, std::optional<Scalar> max) const;
  const Tensor& masked_fill_(const Tensor& mask, Scalar value) const;
  // index_put (include/kiln/ops.h) into this tensor.
  const Tensor& index_put_(const std::vector<Tensor>& indices, const Tensor& values,
                           bool accumulate = false) const;
  // Fresh random values in place: uniform in [from, to), normal with `mean` and `std`.
  const Tensor& uniform_(double from = 0, double to = 1) const;
  const Tensor& normal_(double mean = 0, double std = 1) const;

  // The same with a SymFloat (include/kiln/sym_float.h): a graph scalar while compile()
  // traces one, else its value as a Scalar.
  template <class S, detail::IfSymFloat<S> = 0>
  const Tensor& add_(const S& other) const {
    return other.is_symbolic() ? add_(other.operand_for(*this)) : add_(Scalar(other.hint()));
  }
  template <class S, detail::IfSymFloat<S> = 0>
  const Tensor& add_(const Tensor& other, const S& alpha) const {
    return alpha.is_symbolic() ? add_(other * alpha) : add_(other, Scalar(alpha.hint()));
  }
  template <class S, detail::IfSymFloat<S> = 0>
  const Tensor& sub_(const S& other) const {
    return other.is_symbolic() ? sub_(other.operand_for(*this)) : sub_(Scalar(other.hint()));
  }
  template <class S, detail::IfSymFloat<S> = 0>
  const Tensor& sub_(const Tensor& other, const S& alpha) const {
    return alpha.is_symbolic() ? sub_(other * alpha) : sub_(other, Scalar(alpha.hint()));
  }
  template <class S, detail::IfSymFloat<S> = 0>
  const Tensor& mul_(const S& other) const {
    return other.is_symbolic() ? mul_(other.operand_for(*this)) : mul_(Scalar(other.hint()));
  }
  template <class S, detail::IfSymFloat<S> = 0>
  const Tensor& div_(const S& other) const {
    return other.is_symbolic() ? div_(other.operand_for(*this)) : div_(Scalar(other.hint()));
  }
  template <class S, detail::IfSymFloat<S> = 0>
  const Tensor& fill_(const S& value) const {
    return value.is_symbolic() ? copy_(value.operand_for(*this)) : fill_(Scalar(value.hint()));
  }
  template <class S, detail::IfSymFloat<S> = 0>
  const Tensor& masked_fill_(const Tensor& mask, const S& value) const {
    return value.is_symbolic() ? copy_(masked_fill(mask, value))
                               : masked_fill_(mask, Scalar(value.hint()));
  }
  template <class S, detail::IfSymFloat<S> = 0>
  const Tensor& clamp_(const S& min, const S& max) const {
    // An integer tensor cannot hold a float bound's result: clamp_ with the values raises.
    if (!is_floating(dtype()))
      return clamp_(Scalar(min.guard_double()), Scalar(max.guard_double()));
    return copy_(clamp(min, max));
  }
  template <class S, detail::IfSymFloat<S> = 0>
  Tensor pow(const S& exponent) const {
    return exponent.is_symbolic() ? pow(exponent.operand_for(*this)) : pow(Scalar(exponent.hint()));
  }
  template <class S, detail::IfSymFloat<S> = 0>
  Tensor masked_fill(const Tensor& mask, const S& value) const {
    return value.is_symbolic() ? where(mask, value.tensor().to(dtype()), *this)
                               : masked_fill(mask, Scalar(value.hint()));
  }
  template <class S, detail::IfSymFloat<S> = 0>
  Tensor clamp(const S& min, const S& max) const {
    if (!min.is_symbolic() && !max.is_symbolic())
      return clamp(Scalar(min.hint()), Scalar(max.hint()));
    return minimum(maximum(*this, min), max);  // clamp's answer, NaN included
  }

  // Autograd (include/kiln/autograd.h), as libtorch's Tensor methods.
  const Tensor& requires_grad_(bool requires_grad = true) const;  // floating leaves only
  bool requires_grad() const;
  bool is_leaf() const;                     // not computed by a recorded op
  Tensor grad() const;                      // undefined until a backward reaches this leaf
  void set_grad(const Tensor& grad) const;  // undefined clears it (zero_grad)
  std::string grad_fn_name() const;         // "MulBackward", or "" for a leaf
  // The same elements without history (shares storage, never requires grad).
  Tensor detach() const;
  // kiln::backward({*this}, {grad}, retain_graph).
  void backward(const Tensor& grad = {}, bool retain_graph = false) const;

  std::string to_string() const;
  TensorImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }

 private:
  template <class T>
  static constexpr int dtype_tag() {
    if constexpr (std::is_same_v<T, uint16_t>) {
      return -2;  // f16 or bf16
    } else {
      return static_cast<int>(DTypeOf<std::remove_const_t<T>>::value);
    }
  }
  void* checked_data(size_t element_size, int dtype_tag, bool write) const;

  std::shared_ptr<TensorImpl> impl_;
};

std::ostream& operator<<(std::ostream& os, const Tensor& tensor);

// Factories. Random numbers come from one counter-based generator (Philox4x32-10): after
// manual_seed(s) the same calls give the same numbers, whatever the thread count, eagerly
// or compiled; each call of a compiled function draws fresh ones.
Tensor empty(const SymIntList& size, DType dtype = DType::f32);
Tensor zeros(const SymIntList& size, DType dtype = DType::f32);
Tensor ones(const SymIntList& size, DType dtype = DType::f32);
Tensor full(const SymIntList& size, Scalar value, DType dtype = DType::f32);
// Like x: its shape (symbolic sizes included), dtype and device.
Tensor full_like(const Tensor& x, Scalar value);
Tensor zeros_like(const Tensor& x);
Tensor ones_like(const Tensor& x);
Tensor empty_like(const Tensor& x);
// A 0-d tensor holding `value`.
Tensor scalar_tensor(Scalar value, DType dtype = DType::f32, Device device = Device::cpu);
// 0, 1, ..., end - 1. An integer end may be a size, symbolic while tracing a dynamic dim
// (arange(x.size(1)) follows the sequence length); a floating end takes the Scalar form.
Tensor arange(const SymInt& end, DType dtype = DType::i64);
template <class I, detail::IfInteger<I> = 0>
Tensor arange(I end, DType dtype = DType::i64) {
  return arange(SymInt(static_cast<int64_t>(end)), dtype);
}
Tensor arange(double end, DType dtype = DType::i64);
Tensor arange(Scalar start, Scalar end, Scalar step = 1, DType dtype = DType::i64);
// `steps` values from start to end, both included (torch.linspace).
Tensor linspace(Scalar start, Scalar end, int64_t steps, DType dtype = DType::f32);
// An n × m identity matrix (m < 0: n × n), as torch.eye.
Tensor eye(int64_t n, int64_t m = -1, DType dtype = DType::f32);
Tensor rand(const SymIntList& size, DType dtype = DType::f32);   // uniform [0, 1)
Tensor randn(const SymIntList& size, DType dtype = DType::f32);  // standard normal
// Like x's shape (symbolic sizes included), dtype (f32 for a non-floating x) and device.
Tensor rand_like(const Tensor& x);
Tensor randn_like(const Tensor& x);
// Integers uniform in [low, high) (torch.randint(low, high, size)).
Tensor randint(int64_t low, int64_t high, const SymIntList& size, DType dtype = DType::i64);
Tensor randint(int64_t high, const SymIntList& size, DType dtype = DType::i64);
void manual_seed(uint64_t seed);
// A tensor holding a copy of `values` (converted to `dtype`), of shape `shape`.
Tensor from_vector(const std::vector<double>& values, const Shape& shape, DType dtype = DType::f32);

// A tensor viewing host memory kiln does not own (no copy), as torch::from_blob: `sizes`
// (and `strides`, in elements; contiguous when not given) of `dtype` at `data`. The memory
// must stay valid until `deleter` runs, which kiln calls (if given) when the last tensor
// viewing it goes. Writes through either side are seen by the other.
Tensor from_blob(void* data, const Shape& sizes, DType dtype = DType::f32,
                 std::function<void(void*)> deleter = {});
Tensor from_blob(void* data, const Shape& sizes, const Shape& strides, DType dtype = DType::f32,
                 std::function<void(void*)> deleter = {});

// A tensor of T's dtype holding a copy of `values`: from_vector<int64_t>({1, 2, 3}, {3}).
namespace detail {
// A fresh tensor holding a copy of `count` elements of `dtype` at `data`, of shape `shape`.
Tensor copy_of_elements(const void* data, int64_t count, DType dtype, const Shape& shape);
}  // namespace detail
template <class T>
Tensor from_vector(const std::vector<T>& values, const Shape& shape) {
  return detail::copy_of_elements(values.data(), static_cast<int64_t>(values.size()),
                                  DTypeOf<T>::value, shape);
}

// Threads of intra-op parallelism (kiln's CPU kernels, eager and generated, and BLAS) for
// the calling thread's calls, as torch::set_num_threads; 1 to 1024. A compiled kernel tuned
// to THREADS=n runs on at most this many.
void set_num_threads(int threads);
int get_num_threads();

// Makes dimension `dim` of `tensor` symbolic for compile(): kernels take its size at run
// time, and a call with another size of that dimension reuses the compiled entry.
void mark_dynamic(const Tensor& tensor, int64_t dim);

}  // namespace kiln
