#include "support/compare.h"

#include <fmt/format.h>

#include <cmath>

namespace kiln::testing {

std::string compare_tensors(const Tensor& actual, const Tensor& expected, double rtol,
                            double atol) {
  if (actual.dtype() != expected.dtype())
    return fmt::format("dtype {} != expected {}", dtype_name(actual.dtype()),
                       dtype_name(expected.dtype()));
  if (actual.sizes() != expected.sizes())
    return fmt::format("shape [{}] != expected [{}]", fmt::join(actual.sizes(), ", "),
                       fmt::join(expected.sizes(), ", "));
  Tensor a = actual.cpu().contiguous().to(DType::f64).contiguous();
  Tensor e = expected.cpu().contiguous().to(DType::f64).contiguous();
  const double* pa = a.data<double>();
  const double* pe = e.data<double>();
  bool exact = !is_floating(actual.dtype());
  for (int64_t i = 0; i < a.numel(); ++i) {
    double x = pa[i], y = pe[i];
    if (std::isnan(x) && std::isnan(y)) continue;
    bool ok = exact ? x == y : (x == y || std::fabs(x - y) <= atol + rtol * std::fabs(y));
    if (!ok)
      return fmt::format("element {} (of {}): got {}, expected {} (rtol {}, atol {})", i, a.numel(),
                         x, y, rtol, atol);
  }
  return "";
}

double default_tolerance(DType dtype) {
  switch (dtype) {
    case DType::f32:
      return 1e-5;
    case DType::f64:
      return 1e-12;
    case DType::f16:
      return 1e-3;
    case DType::bf16:
      return 8e-3;
    default:
      return 0;
  }
}

std::string data_path(const std::string& file) {
  return std::string(KILN_TEST_DATA_DIR) + "/" + file;
}

}  // namespace kiln::testing
