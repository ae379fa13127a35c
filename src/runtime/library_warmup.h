// Library warm-up for CUDA plans. A plan's matrix products run in cuBLASLt, whose first use
// in a process costs far more than the products: loading the library (tens to hundreds of
// ms), creating its handle, choosing each shape's algorithm, and loading each chosen
// kernel (CUDA loads kernels lazily, tens of ms apiece). warm_up_libraries runs every
// library step of the plan once, on scratch operands of its static shapes, on a thread of
// its own, so those costs overlap the compile of the plan's own kernels instead of adding
// to the first call.
#pragma once

#include <future>

#include "runtime/plan.h"

namespace kiln {

// Starts the warm-up of `plan`'s library steps (CUDA plans; others have none); the returned
// future is ready when it is done. Steps with symbolic shapes are left to their first run,
// and so are failures: the warm-up never throws, the real run reports what is wrong. The
// caller waits for the future before the plan first runs (its launches share kiln's stream,
// which must not be mid-capture).
std::future<void> warm_up_libraries(const CompiledPlan& plan);

}  // namespace kiln
