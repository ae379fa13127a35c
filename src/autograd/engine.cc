// The backward engine: from the roots' gradients, every node reachable through their
// history runs once, after all the nodes that feed it (dependency counts), latest-created
// first among the ready ones, as PyTorch's engine orders them. A node's input gradients are
// summed over broadcast dims and cast to the inputs' dtypes before they flow on; leaves
// accumulate into .grad (backward) or into the results (grad). Runs with grad mode off: the
// gradients carry no history of their own.
#include <fmt/format.h>

#include <map>
#include <queue>
#include <unordered_map>

#include "autograd/derivatives.h"
#include "autograd/graph.h"
#include "kiln/autograd.h"
#include "kiln/error.h"
#include "kiln/ops.h"
#include "tensor/tensor_impl.h"

namespace kiln {

namespace {

// `g` (a gradient computed at a broadcast shape) summed down to `sizes`.
Tensor reduce_to(const Tensor& g, const Shape& sizes, const GradNode& node, size_t input) {
  if (g.sizes() == sizes) return g;
  int64_t lead = g.dim() - static_cast<int64_t>(sizes.size());
  if (lead < 0)
    throw Error(fmt::format("{}: gradient {} for input {} of shape {} (a derivative bug)",
                            node.name(), shape_string(g.sizes()), input, shape_string(sizes)));
  Shape dims;
  for (int64_t d = 0; d < lead; ++d) dims.push_back(d);
  for (size_t i = 0; i < sizes.size(); ++i)
    if (sizes[i] == 1 && g.sizes()[static_cast<size_t>(lead) + i] != 1)
      dims.push_back(lead + static_cast<int64_t>(i));
  Tensor r = dims.empty() ? g : g.sum(dims, true);
  if (r.numel() != shape_numel(sizes))
    throw Error(fmt::format("{}: gradient {} does not reduce to input {}'s shape {}", node.name(),
                            shape_string(g.sizes()), input, shape_string(sizes)));
  return r.reshape(sizes);
}

Tensor accumulate(const Tensor& sum, const Tensor& g) { return sum.defined() ? sum + g : g; }

struct Run {
  std::unordered_map<const GradNode*, int> dependencies;
  std::unordered_map<const GradNode*, std::vector<Tensor>> buffers;  // per output
  std::vector<std::shared_ptr<GradNode>> visited;
  std::unordered_map<const TensorImpl*, Tensor> leaf_grads;
  std::vector<std::shared_ptr<TensorImpl>> leaves;  // in first-reached order
};

void count_dependencies(const std::vector<Edge>& roots, Run& run) {
  std::vector<GradNode*> stack;
  for (const Edge& e : roots)
    if (e.node && run.dependencies.emplace(e.node.get(), 0).second) {
      stack.push_back(e.node.get());
      run.visited.push_back(e.node);
    }
  while (!stack.empty()) {
    GradNode* node = stack.back();
    stack.pop_back();
    for (const Edge& e : node->next) {
      if (!e.node) continue;
      auto [it, added] = run.dependencies.emplace(e.node.get(), 0);
      ++it->second;
      if (added) {
        stack.push_back(e.node.get());
        run.visited.push_back(e.node);
      }
    }
  }
}

void add_to_buffer(Run& run, const Edge& e, const Tensor& g) {
  std::vector<Tensor>& buffer = run.buffers[e.node.get()];
  buffer.resize(e.node->num_outputs());
  Tensor& slot = buffer.at(e.output_nr);
  slot = accumulate(slot, g);
}

void deliver(const Edge& e, const Tensor& g, Run& run, std::vector<GradNode*>& ready) {
  if (e.leaf) {
    auto [it, added] = run.leaf_grads.emplace(e.leaf.get(), Tensor());
    if (added) run.leaves.push_back(e.leaf);
    it->second = accumulate(it->second, g);
    return;
  }
  add_to_buffer(run, e, g);
  if (--run.dependencies[e.node.get()] == 0) ready.push_back(e.node.get());
}

void check_saved(const GradNode& node) {
  auto check = [&](const SavedTensor& s, const std::string& what) {
    if (!s.value.defined() || !s.value.impl()->storage) return;
    uint64_t now = s.value.impl()->storage->version();
    if (now != s.version)
      throw Error(fmt::format(
          "{}: one of the tensors needed for gradient computation ({}, {} {}) was modified by an "
          "in-place operation after it was saved (version {}, now {}); clone() it before the "
          "in-place op, or use the out-of-place op",
          node.name(), what, dtype_name(s.value.dtype()), shape_string(s.value.sizes()), s.version,
          now));
  };
  for (size_t i = 0; i < node.inputs.size(); ++i) check(node.inputs[i], fmt::format("input {}", i));
  check(node.output, "its output");
}

// Runs `node` on its outputs' summed gradients; its input gradients flow on.
void run_node(GradNode& node, std::vector<Tensor> grad, Run& run, std::vector<GradNode*>& ready) {
  if (node.released) throw_released(node);
  check_saved(node);
  std::vector<Tensor> grads;
  grad.resize(node.num_outputs());
  if (node.custom) {
    for (size_t i = 0; i < grad.size(); ++i)  // an output nothing used: a zero gradient
      if (!grad[i].defined()) {
        const InputMeta& m = node.output_meta[i];
        grad[i] = zeros(m.sizes, m.dtype).to(m.device);
      }
    grads = node.custom(grad);
  } else if (node.op) {
    const Derivative* d = derivative_of(*node.op);
    grads = d->fn(GradContext(node), grad[0]);
  } else {
    grads = {copy_derivative(node.input_meta[0], grad[0])};
  }
  for (size_t i = 0; i < node.next.size(); ++i) {
    if (!node.next[i].defined() || i >= grads.size() || !grads[i].defined()) continue;
    const InputMeta& meta = node.input_meta[i];
    Tensor g = reduce_to(grads[i], meta.sizes, node, i).to(meta.dtype);
    deliver(node.next[i], g, run, ready);
  }
}

// The gradients of `roots` (seeded with `seeds`) through their history: leaf gradients in
// `run`; `captures`, when given, also collects the gradient each of those nodes receives.
void run_backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& seeds,
                  bool retain_graph, Run& run,
                  const std::map<std::pair<const GradNode*, uint32_t>, size_t>* captures,
                  std::vector<Tensor>* captured) {
  if (!seeds.empty() && seeds.size() != roots.size())
    throw Error(fmt::format("backward: {} gradients for {} outputs", seeds.size(), roots.size()));
  std::vector<Edge> edges;
  std::vector<Tensor> grads;
  for (size_t i = 0; i < roots.size(); ++i) {
    const Tensor& root = roots[i];
    if (!root.defined()) throw Error(fmt::format("backward: output {} is undefined", i));
    if (!root.requires_grad())
      throw Error(fmt::format(
          "backward: output {} ({} {}) does not require grad and has no history: no input it "
          "was computed from requires grad (or it was computed under NoGradGuard)",
          i, dtype_name(root.dtype()), shape_string(root.sizes())));
    Tensor seed = seeds.empty() ? Tensor() : seeds[i];
    if (!seed.defined()) {
      if (root.numel() != 1)
        throw Error(fmt::format(
            "backward: a gradient can be implicitly created only for a scalar output; output {} "
            "has shape {}: pass its gradient",
            i, shape_string(root.sizes())));
      seed = ones_like(root);
    } else if (seed.sizes() != root.sizes()) {
      throw Error(fmt::format("backward: gradient {} has shape {}, output {} has shape {}", i,
                              shape_string(seed.sizes()), i, shape_string(root.sizes())));
    }
    edges.push_back(gradient_edge(root));
    grads.push_back(seed.to(root.dtype()));
  }
  count_dependencies(edges, run);
  std::vector<GradNode*> ready;
  for (size_t i = 0; i < edges.size(); ++i) {
    if (edges[i].leaf) {
      deliver(edges[i], grads[i], run, ready);
      continue;
    }
    add_to_buffer(run, edges[i], grads[i]);
  }
  for (const Edge& e : edges)
    if (e.node && run.dependencies[e.node.get()] == 0) ready.push_back(e.node.get());
  auto later_first = [](const GradNode* a, const GradNode* b) { return a->sequence < b->sequence; };
  std::priority_queue<GradNode*, std::vector<GradNode*>, decltype(later_first)> queue(later_first);
  std::unordered_map<const GradNode*, bool> queued;
  auto drain = [&] {
    for (GradNode* n : ready)
      if (!queued[n]) {
        queued[n] = true;
        queue.push(n);
      }
    ready.clear();
  };
  drain();
  while (!queue.empty()) {
    GradNode* node = queue.top();
    queue.pop();
    std::vector<Tensor> grad = std::move(run.buffers[node]);
    run.buffers.erase(node);
    grad.resize(node->num_outputs());
    if (captures)
      for (uint32_t k = 0; k < grad.size(); ++k) {
        auto it = captures->find({node, k});
        if (it != captures->end()) (*captured)[it->second] = grad[k];
      }
    run_node(*node, grad, run, ready);
    drain();
  }
  if (!retain_graph)
    for (const auto& node : run.visited) {
      node->released = true;
      node->inputs.clear();
      node->output = {};
      if (node->custom)  // what its closure saved goes now; `released` refuses another run
        node->custom = [](const std::vector<Tensor>&) { return std::vector<Tensor>{}; };
    }
}

}  // namespace

void backward(const std::vector<Tensor>& outputs, const std::vector<Tensor>& grad_outputs,
              bool retain_graph) {
  NoGradGuard no_grad;
  Run run;
  run_backward(outputs, grad_outputs, retain_graph, run, nullptr, nullptr);
  for (const auto& leaf : run.leaves) {
    Tensor g = run.leaf_grads[leaf.get()];
    AutogradMeta& meta = autograd_meta(Tensor(leaf));
    // A fresh tensor of its own: never an alias of a seed or of another leaf's gradient.
    meta.grad = meta.grad.defined() ? meta.grad + g : g.clone();
  }
}

std::vector<Tensor> grad(const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs,
                         const std::vector<Tensor>& grad_outputs, bool retain_graph,
                         bool allow_unused) {
  NoGradGuard no_grad;
  std::map<std::pair<const GradNode*, uint32_t>, size_t> captures;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i].requires_grad())
      throw Error(fmt::format("grad: input {} ({} {}) does not require grad", i,
                              dtype_name(inputs[i].dtype()), shape_string(inputs[i].sizes())));
    Edge e = gradient_edge(inputs[i]);
    if (e.node) captures.emplace(std::make_pair(e.node.get(), e.output_nr), i);
  }
  std::vector<Tensor> out(inputs.size());
  Run run;
  run_backward(outputs, grad_outputs, retain_graph, run, &captures, &out);
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (inputs[i].is_leaf()) {
      auto it = run.leaf_grads.find(inputs[i].impl());
      if (it != run.leaf_grads.end()) out[i] = it->second;
    }
    if (!out[i].defined() && !allow_unused)
      throw Error(fmt::format(
          "grad: input {} ({} {}) was not used to compute the outputs; pass allow_unused = true "
          "to get an undefined gradient for it",
          i, dtype_name(inputs[i].dtype()), shape_string(inputs[i].sizes())));
  }
  return out;
}

void Tensor::backward(const Tensor& grad, bool retain_graph) const {
  kiln::backward({*this}, {grad}, retain_graph);
}

}  // namespace kiln
