// Shape and dtype rules: what an op produces from its inputs' types and its attributes.
// One function for every op (dispatching on the OpRule family from ops.def), used by the
// graph builder, the verifier and the eager interpreter alike, so that a traced graph and
// an eager call can never disagree about a result's type.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "graph/attrs.h"
#include "graph/dim.h"
#include "graph/op.h"
#include "kiln/dtype.h"

namespace kiln {

// The length of slice [start, end) with `step` of a dim of `size`, or `fail(why)`: constant
// bounds of a constant dim; otherwise step 1 and a length that is one Dim (start 0, or both
// multiples of one symbol), an end within a dynamic dim of the same symbol, and no constant
// end in a dynamic dim. A symbolic end in a constant dim is bounded by symbol_limits.
Dim slice_length(const Dim& size, const Dim& start, const Dim& end, int64_t step,
                 const std::function<void(const std::string&)>& fail);

struct TensorType {
  DType dtype = DType::f32;
  SymShape shape;
  friend bool operator==(const TensorType& a, const TensorType& b) {
    return a.dtype == b.dtype && a.shape == b.shape;
  }
};

std::string type_string(const TensorType& type);  // f32[s0, 1024]

// The result type of `op` applied to `inputs`; throws ShapeError naming the op, the input
// shapes and what is wrong.
TensorType infer_type(Op op, const Attrs& attrs, const std::vector<const TensorType*>& inputs);

// PyTorch's promotion between two tensors, and between a tensor and a Python-like scalar.
DType promote_types(DType a, DType b);
DType promote_with_scalar(DType tensor, Scalar::Kind scalar);
// The dtype in which a binary node computes (its operands are converted to it).
DType binary_compute_dtype(Op op, const Attrs& attrs, const std::vector<DType>& input_dtypes);

// Normalizes a possibly negative dim against `rank`; throws naming `op` when out of range.
int64_t normalize_dim(int64_t dim, int64_t rank, std::string_view op);
// Normalized, sorted, duplicate-free reduction dims; empty `dims` means all.
std::vector<int64_t> reduction_dims(const std::vector<int64_t>& dims, int64_t rank,
                                    std::string_view op);
// Broadcast of shapes, as PyTorch; throws naming `op`.
SymShape broadcast_shapes(const std::vector<const SymShape*>& shapes, std::string_view op);

}  // namespace kiln
