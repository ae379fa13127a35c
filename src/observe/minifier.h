// The minifier (`kiln minify FILE`, docs/design.md §7): shrinks a failing repro to the smallest
// graph that still fails the same way, by delta debugging over its nodes (ddmin). Each
// candidate keeps a subset of the nodes: values of dropped nodes that kept ones read
// become inputs (of their recorded types), kept nodes that no kept node reads become the
// outputs. The caller decides how a candidate is tried — `kiln minify` runs each in a
// separate `kiln repro` process, so a crash ends only that process.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "observe/repro.h"

namespace kiln {

enum class ReproFailure { none, mismatch, error, crash };
const char* repro_failure_name(ReproFailure failure);

// `r` reduced to the nodes `keep` (sorted indices into r.graph.nodes).
Repro sub_repro(const Repro& r, const std::vector<size_t>& keep);

struct MinifyResult {
  Repro minimal;
  ReproFailure failure = ReproFailure::none;  // the original's, which the minimal one keeps
  int tried = 0;                              // candidates run
};

// Throws Error when `failing` does not fail to begin with.
MinifyResult minify(const Repro& failing, const std::function<ReproFailure(const Repro&)>& run,
                    const std::function<void(const std::string&)>& progress);

}  // namespace kiln
