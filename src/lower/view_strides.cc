#include "lower/view_strides.h"

namespace kiln {

namespace {

std::vector<int64_t> contiguous_strides(const std::vector<int64_t>& sizes) {
  std::vector<int64_t> strides(sizes.size());
  int64_t stride = 1;
  for (size_t d = sizes.size(); d-- > 0;) {
    strides[d] = stride;
    stride *= sizes[d];
  }
  return strides;
}

}  // namespace

std::optional<std::vector<int64_t>> reshaped_strides(const std::vector<int64_t>& sizes,
                                                     const std::vector<int64_t>& strides,
                                                     const std::vector<int64_t>& to_sizes) {
  int64_t numel = 1;
  for (int64_t s : sizes) numel *= s;
  if (numel == 0 || sizes.empty()) return contiguous_strides(to_sizes);
  // Walk both shapes from the innermost dim, in chunks of input dims that are contiguous
  // with each other; each chunk must be covered exactly by whole output dims.
  std::vector<int64_t> out(to_sizes.size());
  int64_t view_d = static_cast<int64_t>(to_sizes.size()) - 1;
  int64_t chunk_base_stride = strides.back(), tensor_numel = 1, view_numel = 1;
  for (int64_t d = static_cast<int64_t>(sizes.size()) - 1; d >= 0; --d) {
    tensor_numel *= sizes[static_cast<size_t>(d)];
    const bool chunk_ends =
        d == 0 || (sizes[static_cast<size_t>(d - 1)] != 1 &&
                   strides[static_cast<size_t>(d - 1)] != tensor_numel * chunk_base_stride);
    if (!chunk_ends) continue;
    while (view_d >= 0 &&
           (view_numel < tensor_numel || to_sizes[static_cast<size_t>(view_d)] == 1)) {
      out[static_cast<size_t>(view_d)] = view_numel * chunk_base_stride;
      view_numel *= to_sizes[static_cast<size_t>(view_d)];
      --view_d;
    }
    if (view_numel != tensor_numel) return std::nullopt;
    if (d > 0) {
      chunk_base_stride = strides[static_cast<size_t>(d - 1)];
      tensor_numel = view_numel = 1;
    }
  }
  if (view_d != -1) return std::nullopt;
  return out;
}

std::optional<std::vector<int64_t>> view_strides(const Graph& g, ValueId v) {
  std::vector<int64_t> sizes;
  if (!try_const_shape(g.value_type(v).shape, &sizes)) return std::nullopt;
  const int32_t n = g.node_index(v);
  if (n < 0) return contiguous_strides(sizes);
  const Node& node = g.nodes[static_cast<size_t>(n)];
  if (!is_view(op_info(node.op).rule)) return contiguous_strides(sizes);
  std::vector<int64_t> in_sizes;
  if (!try_const_shape(g.value_type(node.inputs[0]).shape, &in_sizes)) return std::nullopt;
  std::optional<std::vector<int64_t>> in = view_strides(g, node.inputs[0]);
  if (!in) return std::nullopt;
  const auto rank = static_cast<int64_t>(in_sizes.size());
  std::vector<int64_t> out(sizes.size(), 0);
  switch (node.op) {
    case Op::permute: {
      const std::vector<int64_t> dims = node.attrs.get_ints("dims");
      for (size_t k = 0; k < dims.size(); ++k)
        out[k] = (*in)[static_cast<size_t>(dims[k] < 0 ? dims[k] + rank : dims[k])];
      return out;
    }
    case Op::slice: {
      int64_t dim = node.attrs.get_int("dim");
      if (dim < 0) dim += rank;
      out = *in;
      out[static_cast<size_t>(dim)] *= node.attrs.get_int("step", 1);
      return out;
    }
    case Op::expand: {  // aligned at the innermost dim; broadcast dims read one element
      const size_t lead = sizes.size() - in_sizes.size();
      for (size_t d = lead; d < sizes.size(); ++d)
        out[d] = in_sizes[d - lead] == 1 && sizes[d] != 1 ? 0 : (*in)[d - lead];
      return out;
    }
    case Op::reshape:
      return reshaped_strides(in_sizes, *in, sizes);
    default:
      return std::nullopt;
  }
}

bool reshape_copies(const Graph& g, const Node& reshape) {
  if (reshape.op != Op::reshape) return false;
  std::vector<int64_t> in_sizes, sizes;
  if (!try_const_shape(g.value_type(reshape.inputs[0]).shape, &in_sizes) ||
      !try_const_shape(reshape.type.shape, &sizes))
    return false;
  std::optional<std::vector<int64_t>> in = view_strides(g, reshape.inputs[0]);
  return in && !reshaped_strides(in_sizes, *in, sizes);
}

}  // namespace kiln
