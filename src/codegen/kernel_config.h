// Kernel configs and the shape of their tuning spaces (docs/design.md §6); which space each
// kernel gets is autotune/spaces.h's. A config is a set of named integer
// fields (THREADS, VEC, CHUNK, BLOCK, and the GEMM template's BM, BN, BK) that the emitter
// turns into macros around a kernel whose body is the same for every config; its text form,
// "THREADS=2,VEC=512" (fields sorted), is what plans, caches, lookup tables and the profiler
// record. A space lists each field's values, the default config (a field may default to a
// value outside its list: 0 for THREADS means every thread, for VEC the compiler's choice)
// and the candidates benchmarked first, each a change to the default.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace kiln {

using KernelConfig = std::map<std::string, int64_t>;

std::string config_text(const KernelConfig& config);  // "" for the empty config
// Parses "NAME=V,NAME=V"; throws FormatError naming `source` on anything else.
KernelConfig parse_config(std::string_view text, const std::string& source);

struct TuneField {
  std::string name;
  std::vector<int64_t> values;  // in order: neighbours are adjacent values
};

struct TuneSpace {
  std::vector<TuneField> fields;
  KernelConfig defaults;                 // a value for every field
  std::vector<KernelConfig> candidates;  // changes to the defaults, benchmarked first

  bool empty() const { return fields.empty(); }
  const TuneField* field(const std::string& name) const;
  // `config` over the defaults: every field present.
  KernelConfig complete(const KernelConfig& config) const;
  // True when every field of `config` is a field of the space with a listed value (or the
  // field's default).
  bool admits(const KernelConfig& config) const;
  // Coordinate descent's next configs from `config`: one field changed at a time, to its
  // adjacent values, or to every listed value when it holds one outside the list.
  std::vector<KernelConfig> neighbours(const KernelConfig& config) const;
};

// Text form, in plans: "THREADS=1|2;VEC=256|512 default THREADS=0,VEC=0 try VEC=256;THREADS=1".
std::string space_text(const TuneSpace& space);
TuneSpace parse_space(std::string_view text, const std::string& source);

}  // namespace kiln
