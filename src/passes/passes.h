// Graph → graph passes. Each takes a verified graph and returns a new one that computes the
// same outputs from the same inputs, with `changed` saying whether it rewrote anything.
// Inputs (the signature) are never removed or reordered. One pass per file; this header
// lists them all with their contracts. The pipeline order lives in src/driver/pipeline.cc.
#pragma once

#include "graph/graph.h"

namespace kiln {

struct PassResult {
  Graph graph;
  bool changed = false;
};

// Rewrites composite ops into primitives the loop lowering fuses: softmax, log_softmax,
// layer_norm, gelu, var, std, mean, logsumexp, linear. f16/bf16 composites compute in f32
// and cast back once. Reductions over dynamic dims keep mean/var/std (their counts are not
// constants). After: none of those ops remain, except as said.
PassResult decompose_ops(const Graph& graph);
// Whether decompose_ops may rewrite nodes of `op` (those listed above).
bool decompose_ops_rewrites(Op op);

// Removes identity views and casts (reshape to the same shape, identity permute, full
// slices, expand to the same shape, `to` the same dtype) and merges chains: reshape of a
// reshape, permute of a permute. After: no view node is an identity, no two reshapes or
// two permutes are chained.
PassResult simplify_views(const Graph& graph);

// Evaluates nodes whose inputs are all constants, with the eager interpreter, into new
// constants named f0, f1, ... (a result larger than the constants it reads is not folded,
// so expand/broadcast do not bloat the graph; views of constants stay views). Constants no
// node reads are dropped.
PassResult fold_constants(const Graph& graph);

// Merges nodes with the same op, inputs and attributes into the first of them.
PassResult eliminate_common_subexpressions(const Graph& graph);

// For GPU plans: a matmul and its pointwise tail that cuBLASLt's epilogue computes (bias of
// a linear layer, relu) become one linear or matmul node carrying `epilogue=relu`. After:
// no matmul reads permute(w, [1, 0]) of a 2-D w; no such product's only reader is relu.
PassResult fuse_gemm_epilogues(const Graph& graph);
// Its first half, for GPU plans before decompose_ops: a linear or matmul whose only reader
// is relu or gelu(approximate=tanh) carries it as `epilogue=relu|gelu_tanh`. After: no such
// product's only reader is one of those activations.
PassResult fuse_gemm_activations(const Graph& graph);

// Before decompose_ops: matmul(q, permute(k, last two swapped)) [* s | / s] → softmax(-1)
// → matmul(·, v), each value read only by the next, becomes one
// attention(q, k, v, scale=s[, divide=true]) node. After: no such chain remains in f32,
// f16 or bf16 (fuse_attention, GPU plans) or in f32 (fuse_attention_f32, CPU plans).
PassResult fuse_attention(const Graph& graph);
PassResult fuse_attention_f32(const Graph& graph);

// Removes nodes and constants that no output depends on.
PassResult eliminate_dead_nodes(const Graph& graph);

}  // namespace kiln
