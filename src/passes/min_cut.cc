#include "passes/min_cut.h"

#include <algorithm>
#include <deque>
#include <limits>

namespace kiln {

namespace {

constexpr int64_t kInfinite = std::numeric_limits<int64_t>::max() / 4;

// Edmonds-Karp max flow over an adjacency list of residual edges.
class FlowNetwork {
 public:
  explicit FlowNetwork(size_t nodes) : adjacency_(nodes) {}

  void add_edge(size_t from, size_t to, int64_t capacity) {
    adjacency_[from].push_back(edges_.size());
    edges_.push_back({to, capacity});
    adjacency_[to].push_back(edges_.size());
    edges_.push_back({from, 0});
  }

  void max_flow(size_t source, size_t sink) {
    while (true) {
      std::vector<size_t> via(adjacency_.size(), kNone);
      std::deque<size_t> queue{source};
      std::vector<bool> seen(adjacency_.size(), false);
      seen[source] = true;
      while (!queue.empty() && !seen[sink]) {
        size_t u = queue.front();
        queue.pop_front();
        for (size_t e : adjacency_[u])
          if (edges_[e].capacity > 0 && !seen[edges_[e].to]) {
            seen[edges_[e].to] = true;
            via[edges_[e].to] = e;
            queue.push_back(edges_[e].to);
          }
      }
      if (!seen[sink]) return;
      int64_t push = kInfinite;
      for (size_t v = sink; v != source; v = edges_[via[v] ^ 1].to)
        push = std::min(push, edges_[via[v]].capacity);
      for (size_t v = sink; v != source; v = edges_[via[v] ^ 1].to) {
        edges_[via[v]].capacity -= push;
        edges_[via[v] ^ 1].capacity += push;
      }
    }
  }

  // The nodes the source still reaches in the residual network: its side of the cut.
  std::vector<bool> source_side(size_t source) const {
    std::vector<bool> seen(adjacency_.size(), false);
    std::deque<size_t> queue{source};
    seen[source] = true;
    while (!queue.empty()) {
      size_t u = queue.front();
      queue.pop_front();
      for (size_t e : adjacency_[u])
        if (edges_[e].capacity > 0 && !seen[edges_[e].to]) {
          seen[edges_[e].to] = true;
          queue.push_back(edges_[e].to);
        }
    }
    return seen;
  }

 private:
  static constexpr size_t kNone = std::numeric_limits<size_t>::max();
  struct Edge {
    size_t to;
    int64_t capacity;
  };
  std::vector<std::vector<size_t>> adjacency_;
  std::vector<Edge> edges_;
};

// Elementwise work, views and draws: what the backward may recompute.
bool recomputable(OpRule rule) {
  return is_pointwise(rule) || is_view(rule) || rule == OpRule::Random || rule == OpRule::Arange;
}

int64_t bytes_of(const TensorType& type, const std::vector<int64_t>& hints) {
  int64_t n = dtype_size(type.dtype);
  for (const Dim& d : type.shape) n *= std::max<int64_t>(1, d.eval(hints));
  return n;
}

}  // namespace

std::vector<bool> min_cut_saved(const Graph& joint, const std::vector<bool>& tangent,
                                const std::vector<bool>& needed) {
  size_t n = static_cast<size_t>(joint.num_values());
  size_t source = 2 * n, sink = 2 * n + 1;
  auto in = [](size_t v) { return 2 * v; };
  auto out = [](size_t v) { return 2 * v + 1; };
  FlowNetwork net(2 * n + 2);
  size_t free_values = joint.inputs.size() + joint.constants.size();
  for (size_t v = 0; v < n; ++v) {
    if (tangent[v]) continue;
    int32_t node = joint.node_index(static_cast<ValueId>(v));
    if (v < free_values) {
      net.add_edge(source, in(v), kInfinite);
      net.add_edge(in(v), out(v), 0);  // taken directly: free
    } else {
      const Node& nd = joint.nodes[static_cast<size_t>(node)];
      if (!recomputable(op_info(nd.op).rule)) net.add_edge(source, in(v), kInfinite);
      net.add_edge(in(v), out(v), bytes_of(nd.type, joint.size_hints));
      for (ValueId input : nd.inputs)
        if (!tangent[static_cast<size_t>(input)])
          net.add_edge(out(static_cast<size_t>(input)), in(v), kInfinite);
    }
    if (needed[v]) net.add_edge(out(v), sink, kInfinite);
  }
  net.max_flow(source, sink);
  std::vector<bool> side = net.source_side(source);
  std::vector<bool> saved(n, false);
  for (size_t v = free_values; v < n; ++v) saved[v] = !tangent[v] && side[in(v)] && !side[out(v)];
  return saved;
}

}  // namespace kiln
