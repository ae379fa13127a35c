// Guards: the input signature a compiled entry was traced for. A call matches when every
// tensor has the same dtype, device, rank and contiguity, the same sizes except in dynamic
// dims, dynamic dims that shared a symbol are still equal, and lists have the same lengths.
#pragma once

#include <string>
#include <vector>

#include "graph/graph.h"
#include "kiln/compile.h"

namespace kiln {

struct TensorGuard {
  DType dtype;
  Device device;
  bool contiguous;
  SymShape shape;  // symbolic dims match any size (equal across a symbol)
};

struct Guards {
  std::vector<int64_t> structure;
  std::vector<Scalar> scalars;  // specialized: the same kinds and values
  std::vector<TensorGuard> tensors;
  int32_t num_symbols = 0;

  bool matches(const detail::Flat& call) const;
  std::string describe() const;
};

// The guards of a graph traced from `call` (its inputs' types carry the symbols).
Guards make_guards(const Graph& graph, const detail::Flat& call);

}  // namespace kiln
