// Test helpers: element-wise comparison with per-dtype tolerances (|a - b| <= atol + rtol*|b|,
// NaN equal to NaN, integers and bools exact) and the path of the test data.
#pragma once

#include <string>

#include "kiln/kiln.h"

namespace kiln::testing {

// Empty when `actual` matches `expected` (on any devices); otherwise a description of the
// first mismatch.
std::string compare_tensors(const Tensor& actual, const Tensor& expected, double rtol, double atol);
// Default tolerances for a dtype (f32 1e-5, f64 1e-12, f16 1e-3, bf16 8e-3, exact otherwise).
double default_tolerance(DType dtype);
std::string data_path(const std::string& file);

}  // namespace kiln::testing
