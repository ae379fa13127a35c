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
  bool requires_grad;  // a trace with grad mode on saw it (else: false)
  SymShape shape;      // symbolic dims match any size (equal across a symbol)
};

struct Guards {
  std::vector<int64_t> structure;
  std::vector<Scalar> scalars;      // specialized: the same kinds and values
  std::vector<bool> graph_scalars;  // per scalar: a graph scalar, which any double matches
  std::vector<TensorGuard> tensors;
  int32_t num_symbols = 0;
  bool grad_mode = true;  // traced with grad mode on: its results may have history

  bool matches(const detail::Flat& call) const;
  // The structure and the tensors match (the scalars may not).
  bool matches_tensors(const detail::Flat& call) const;
  // The scalars the call passes other values for (graph scalars never differ).
  std::vector<size_t> differing_scalars(const detail::Flat& call) const;
  std::string describe() const;

 private:
  bool scalar_matches(size_t i, const detail::Flat& call) const;
};

// The guards of a graph traced from `call` (its inputs' types carry the symbols), whose
// scalars `graph_scalars` marks are graph scalars.
Guards make_guards(const Graph& graph, const detail::Flat& call, std::vector<bool> graph_scalars);

}  // namespace kiln
