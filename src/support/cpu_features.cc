#include "support/cpu_features.h"

namespace kiln {

std::vector<int> cpu_vector_widths() {
  std::vector<int> widths{128};
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) widths.push_back(256);
  if (__builtin_cpu_supports("avx512f")) widths.push_back(512);
  return widths;
}

int preferred_vector_width() {
  static const int width = [] {
    std::vector<int> widths = cpu_vector_widths();
    if (widths.back() == 512 && !(__builtin_cpu_is("amd") || __builtin_cpu_supports("avx512ifma")))
      return 256;
    return widths.back();
  }();
  return width;
}

}  // namespace kiln
