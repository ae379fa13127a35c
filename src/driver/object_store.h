// The loaded objects of translation units, by kernel-cache key: this process's table
// first (one load per object per process), then the persistent kernel cache (checksummed
// entries), else compiled — here (InProcess, the only place compile.in_process counts) or
// by a worker, whose reply is loaded with load_object.
#pragma once

#include <memory>
#include <optional>
#include <string_view>

#include "cache/cache.h"
#include "compile/shared_object.h"
#include "compile/toolchain.h"
#include "runtime/plan.h"
#include "worker/jobs.h"

namespace kiln {

// The unit's object if this process or the cache has it (cache.kernel.hit), else nullptr
// (cache.kernel.miss).
std::shared_ptr<KernelObject> find_object(const ObjectUnit& unit,
                                          const std::optional<Cache>& cache);

// Loads an object's bytes (validated by the caller) and remembers it under the unit's key.
// A unit of a CUDA plan loads as a CUDA module, any other as a shared object.
std::shared_ptr<KernelObject> load_object(const ObjectUnit& unit, std::string_view bytes);

// Loads the object of a worker's compile_unit reply, under the key the worker computed.
std::shared_ptr<KernelObject> load_object_from_reply(const ObjectUnit& unit,
                                                     const UnitReply& reply);

// Empties this process's table (objects stay mapped): the next lookups go to the cache,
// as in a fresh process. For benchmarks and tests of warm starts.
void forget_loaded_objects();

// Compiles the unit in this process, stores it in the cache when there is one, loads it.
std::shared_ptr<KernelObject> compile_object_here(const ObjectUnit& unit,
                                                  const Toolchain& toolchain,
                                                  const std::optional<Cache>& cache);

}  // namespace kiln
