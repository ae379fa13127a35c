// set_num_threads / get_num_threads: the OpenMP thread count of the calling thread's
// parallel regions (the eager kernels and generated CPU kernels run in the caller's thread)
// and OpenBLAS's count, set together.
#include <fmt/format.h>
#include <omp.h>

#include "kiln/error.h"
#include "kiln/tensor.h"
#include "support/blas.h"

namespace kiln {

void set_num_threads(int threads) {
  if (threads < 1 || threads > 1024)
    throw Error(fmt::format("set_num_threads({}): the count must be 1 to 1024", threads));
  omp_set_num_threads(threads);
  blas().set_num_threads(threads);
}

int get_num_threads() { return omp_get_max_threads(); }

}  // namespace kiln
