#include "graph/op.h"

#include <array>

namespace kiln {

namespace {
constexpr std::array<OpInfo, kNumOps> kOpInfos = {{
#define KILN_OP(name, rule, min_in, max_in) {#name, OpRule::rule, min_in, max_in},
#include "graph/ops.def"
#undef KILN_OP
}};
}  // namespace

const OpInfo& op_info(Op op) { return kOpInfos[static_cast<size_t>(op)]; }

std::optional<Op> op_from_name(std::string_view name) {
  for (size_t i = 0; i < kOpInfos.size(); ++i)
    if (kOpInfos[i].name == name) return static_cast<Op>(i);
  return std::nullopt;
}

}  // namespace kiln
