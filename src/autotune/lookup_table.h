// The autotune lookup table (KILN_AUTOTUNE_LOOKUP_TABLE, docs/design.md §6): a JSON object mapping
// a kernel's tuning hash (tuner.h: its body with the name taken out, its tuning space and
// its size hints) to a config, either as the config's text or as an object with a
// "config" member (other members are notes and are ignored):
//   {"0123...ef": "THREADS=1,VEC=256", "4567...ab": {"config": "CHUNK=1024", "kernel": "..."}}
// A hit replaces benchmarking the candidate list; coordinate descent, if enabled, starts
// from it. `kiln cache autotune-table` writes one from the configs this machine tuned.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "codegen/kernel_config.h"

namespace kiln {

class LookupTable {
 public:
  // Throws FormatError naming `source` for anything but the format above.
  static LookupTable parse(std::string_view json, const std::string& source);
  // The table KILN_AUTOTUNE_LOOKUP_TABLE names, or nullptr when it is unset; an unreadable
  // or malformed file is an Error naming the variable and the file.
  static std::shared_ptr<const LookupTable> from_environment();

  const KernelConfig* find(const std::string& hash) const;
  size_t size() const { return entries_.size(); }
  const std::string& digest() const { return digest_; }  // of the file's content (graph keys)

 private:
  std::map<std::string, KernelConfig> entries_;
  std::string digest_;
};

}  // namespace kiln
