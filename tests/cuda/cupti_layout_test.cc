// kiln's declarations of CUPTI's activity records against the toolkit's own header: the
// fields kiln reads sit at the same offsets. Built where cupti_activity.h is installed.
#include <cupti_activity.h>
#include <gtest/gtest.h>

#include "cuda/cupti_records.h"

namespace kiln::cuda {
namespace {

#define KILN_SAME_OFFSET(ours, field, theirs, their_field) \
  static_assert(offsetof(ours, field) == offsetof(theirs, their_field), #field)

KILN_SAME_OFFSET(CuptiKernelRecord, kind, CUpti_ActivityKernel10, kind);
KILN_SAME_OFFSET(CuptiKernelRecord, start, CUpti_ActivityKernel10, start);
KILN_SAME_OFFSET(CuptiKernelRecord, end, CUpti_ActivityKernel10, end);
KILN_SAME_OFFSET(CuptiKernelRecord, stream_id, CUpti_ActivityKernel10, streamId);
KILN_SAME_OFFSET(CuptiKernelRecord, grid_x, CUpti_ActivityKernel10, gridX);
KILN_SAME_OFFSET(CuptiKernelRecord, block_x, CUpti_ActivityKernel10, blockX);
KILN_SAME_OFFSET(CuptiKernelRecord, correlation_id, CUpti_ActivityKernel10, correlationId);
KILN_SAME_OFFSET(CuptiKernelRecord, name, CUpti_ActivityKernel10, name);
KILN_SAME_OFFSET(CuptiExternalCorrelationRecord, external_kind, CUpti_ActivityExternalCorrelation,
                 externalKind);
KILN_SAME_OFFSET(CuptiExternalCorrelationRecord, external_id, CUpti_ActivityExternalCorrelation,
                 externalId);
KILN_SAME_OFFSET(CuptiExternalCorrelationRecord, correlation_id, CUpti_ActivityExternalCorrelation,
                 correlationId);

TEST(CuptiLayout, KernelAndCorrelationRecordsMatchTheToolkitHeader) {
  EXPECT_EQ(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL, 10);
  EXPECT_EQ(CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION, 39);
  EXPECT_EQ(CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM0, 3);
  EXPECT_EQ(CUPTI_ERROR_MAX_LIMIT_REACHED, 12);
  EXPECT_EQ(sizeof(CuptiExternalCorrelationRecord), sizeof(CUpti_ActivityExternalCorrelation));
}

}  // namespace
}  // namespace kiln::cuda
