#include "trace/guards.h"

#include <fmt/format.h>

#include <cstring>

#include "kiln/autograd.h"
#include "tensor/tensor_impl.h"

namespace kiln {

namespace {

// A double by its bits: 0.0 and -0.0 differ (1 / x tells them apart); a NaN is any NaN.
bool same_scalar(const Scalar& a, const Scalar& b) {
  if (a.kind() != b.kind()) return false;
  if (!a.is_floating()) return a.to_int() == b.to_int();
  double da = a.to_double(), db = b.to_double();
  return std::memcmp(&da, &db, sizeof da) == 0 || (da != da && db != db);
}

}  // namespace

Guards make_guards(const Graph& graph, const detail::Flat& call, std::vector<bool> graph_scalars) {
  Guards g;
  g.structure = call.structure;
  g.scalars = call.scalars;
  g.graph_scalars = std::move(graph_scalars);
  g.graph_scalars.resize(g.scalars.size(), false);
  g.num_symbols = graph.num_symbols;
  g.grad_mode = is_grad_enabled();
  for (size_t i = 0; i < call.tensors.size(); ++i) {
    const Tensor& t = call.tensors[i];
    g.tensors.push_back({t.dtype(), t.device(), t.is_contiguous(), g.grad_mode && t.requires_grad(),
                         graph.inputs[i].type.shape});
  }
  return g;
}

bool Guards::scalar_matches(size_t i, const detail::Flat& call) const {
  return graph_scalars[i] ? call.scalars[i].is_floating()
                          : same_scalar(scalars[i], call.scalars[i]);
}

bool Guards::matches(const detail::Flat& call) const {
  if (!matches_tensors(call)) return false;
  for (size_t i = 0; i < scalars.size(); ++i)
    if (!scalar_matches(i, call)) return false;
  return true;
}

std::vector<size_t> Guards::differing_scalars(const detail::Flat& call) const {
  std::vector<size_t> out;
  for (size_t i = 0; i < scalars.size() && i < call.scalars.size(); ++i)
    if (!scalar_matches(i, call)) out.push_back(i);
  return out;
}

bool Guards::matches_tensors(const detail::Flat& call) const {
  if (call.structure != structure || call.tensors.size() != tensors.size() ||
      call.scalars.size() != scalars.size())
    return false;
  // Grad mode and requires_grad decide whether results get history: an entry traced
  // without serves only calls that need none.
  bool grad_mode_now = is_grad_enabled();
  if (grad_mode_now != grad_mode) return false;
  int64_t bound[16];
  std::vector<int64_t> bound_heap;
  int64_t* bindings = bound;
  if (num_symbols > 16) {
    bound_heap.assign(static_cast<size_t>(num_symbols), -1);
    bindings = bound_heap.data();
  } else {
    std::fill(bound, bound + 16, -1);
  }
  for (size_t i = 0; i < tensors.size(); ++i) {
    const TensorGuard& g = tensors[i];
    const Tensor& t = call.tensors[i];
    if (!t.defined()) return false;
    const TensorImpl& impl = *t.impl();
    if (impl.dtype != g.dtype || impl.device != g.device || impl.sizes.size() != g.shape.size())
      return false;
    for (size_t d = 0; d < g.shape.size(); ++d) {
      const Dim& dim = g.shape[d];
      int64_t size = impl.sizes[d];
      if (dim.is_const()) {
        if (size != dim.coeff) return false;
      } else {
        int64_t& b = bindings[dim.sym];
        if (b >= 0 && b != size) return false;
        b = size;
      }
    }
    if (t.is_contiguous() != g.contiguous) return false;
    if (grad_mode_now && impl.requires_grad != g.requires_grad) return false;
  }
  return true;
}

std::string Guards::describe() const {
  std::vector<std::string> parts;
  for (const TensorGuard& g : tensors)
    parts.push_back(fmt::format("{}{}{}", dtype_name(g.dtype), shape_string(g.shape),
                                g.contiguous ? "" : " (strided)"));
  for (size_t i = 0; i < scalars.size(); ++i)
    parts.push_back(graph_scalars[i] ? "f64 graph scalar" : scalars[i].to_string());
  return fmt::format("({})", fmt::join(parts, ", "));
}

}  // namespace kiln
