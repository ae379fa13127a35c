// Process-wide counters behind kiln::stats(); bumping one is a relaxed atomic add.
#pragma once

#include <cstdint>

namespace kiln {

enum class Stat : int {
#define KILN_STAT(id, name) id,
#include "support/stats.def"
#undef KILN_STAT
  kCount
};

void bump(Stat stat, int64_t amount = 1);
int64_t stat_value(Stat stat);

}  // namespace kiln
