// kiln's random number generator for host code: support/philox.inc compiled into libkiln,
// and its text for generated kernels (kPhiloxSource, embedded at build time by
// cmake/EmbedText.cmake), so eager, compiled CPU and compiled CUDA draws share one definition.
#pragma once

#include <cmath>
#include <cstdint>

namespace kiln {

#define KILN_HELPER inline
#define KILN_RANDOM_LOG std::log
#define KILN_RANDOM_COS std::cos
#define KILN_RANDOM_SQRT std::sqrt
#include "support/philox.inc"
#undef KILN_HELPER
#undef KILN_RANDOM_LOG
#undef KILN_RANDOM_COS
#undef KILN_RANDOM_SQRT

// The text of support/philox.inc.
extern const char kPhiloxSource[];

}  // namespace kiln
