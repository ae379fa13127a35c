// The golden op cases made by PyTorch (tests/data/golden_ops.json): each case's torch op
// expressed with kiln's API, so the same call runs eagerly and inside a traced function.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "kiln/kiln.h"

namespace kiln::testing {

struct GoldenCase {
  int id;
  std::string op;
  nlohmann::json attrs;
  std::vector<Tensor> inputs;
  std::vector<Tensor> expected;
  double rtol, atol;
  std::string note;
};

std::vector<GoldenCase> load_golden_cases();
// Applies the case's op to `inputs` with kiln's public API.
std::vector<Tensor> apply_golden_op(const GoldenCase& c, const std::vector<Tensor>& inputs);

}  // namespace kiln::testing
