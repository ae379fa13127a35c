#include "support/stats.h"

#include <array>
#include <atomic>

#include "kiln/compile.h"

namespace kiln {

namespace {
constexpr std::array<const char*, static_cast<size_t>(Stat::kCount)> kNames = {
#define KILN_STAT(id, name) name,
#include "support/stats.def"
#undef KILN_STAT
};
std::array<std::atomic<int64_t>, static_cast<size_t>(Stat::kCount)> g_counters{};
}  // namespace

void bump(Stat stat, int64_t amount) {
  g_counters[static_cast<size_t>(stat)].fetch_add(amount, std::memory_order_relaxed);
}

int64_t stat_value(Stat stat) {
  return g_counters[static_cast<size_t>(stat)].load(std::memory_order_relaxed);
}

std::map<std::string, int64_t> stats() {
  std::map<std::string, int64_t> out;
  for (size_t i = 0; i < kNames.size(); ++i) out[kNames[i]] = g_counters[i].load();
  return out;
}

void reset_stats() {
  for (auto& c : g_counters) c.store(0);
}

}  // namespace kiln
