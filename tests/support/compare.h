// Test helpers: element-wise comparison with per-dtype tolerances (|a - b| <= atol + rtol*|b|,
// NaN equal to NaN, integers and bools exact), the path of the test data, and the message of
// the kiln::Error a call raises.
#pragma once

#include <cstdlib>
#include <string>

#include "kiln/kiln.h"

namespace kiln::testing {

// Empty when `actual` matches `expected` (on any devices); otherwise a description of the
// first mismatch.
std::string compare_tensors(const Tensor& actual, const Tensor& expected, double rtol, double atol);
// Default tolerances for a dtype (f32 1e-5, f64 1e-12, f16 1e-3, bf16 8e-3, exact otherwise).
double default_tolerance(DType dtype);
std::string data_path(const std::string& file);

// The message of the kiln::Error `f` throws, or "(no error)".
template <class F>
std::string error_of(F f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

// Sets the environment variable `name` for one scope, restoring its absence after.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) { setenv(name, value, 1); }
  ~ScopedEnv() { unsetenv(name_); }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
};

}  // namespace kiln::testing
