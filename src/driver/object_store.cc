#include "driver/object_store.h"

#include <map>
#include <mutex>

#include <fmt/format.h>

#include "cuda/module.h"
#include "kiln/error.h"
#include "support/stats.h"

namespace kiln {

namespace {

struct Loaded {
  std::shared_ptr<KernelObject> object;
  std::string bytes;  // kept to fill a cache that lacks it (cleared, or another root)
};

std::mutex table_mutex;
std::map<std::string, Loaded>& table() {
  // Never destroyed: pool threads may still load objects while the process exits.
  static auto* loaded = new std::map<std::string, Loaded>();
  return *loaded;
}

}  // namespace

std::shared_ptr<KernelObject> load_object(const ObjectUnit& unit, std::string_view bytes) {
  std::shared_ptr<KernelObject> object;
  if (unit.device == Device::cuda)
    object = cuda::Module::load_bytes(bytes, unit.name + "_" + unit.key + ".cubin");
  else
    object = SharedObject::load_bytes(bytes, unit.name + "_" + unit.key + ".so");
  std::lock_guard<std::mutex> lock(table_mutex);
  return table().emplace(unit.key, Loaded{object, std::string(bytes)}).first->second.object;
}

void forget_loaded_objects() {
  std::lock_guard<std::mutex> lock(table_mutex);
  table().clear();
}

std::shared_ptr<KernelObject> find_object(const ObjectUnit& unit,
                                          const std::optional<Cache>& cache) {
  {
    std::lock_guard<std::mutex> lock(table_mutex);
    auto it = table().find(unit.key);
    if (it != table().end()) {
      bump(Stat::cache_kernel_hit);
      if (cache && !cache->contains(CacheKind::kernel, unit.key))
        cache->put(CacheKind::kernel, unit.key, it->second.bytes);
      return it->second.object;
    }
  }
  if (cache) {
    if (std::optional<std::string> bytes = cache->get(CacheKind::kernel, unit.key)) {
      bump(Stat::cache_kernel_hit);
      return load_object(unit, *bytes);
    }
  }
  bump(Stat::cache_kernel_miss);
  return nullptr;
}

std::shared_ptr<KernelObject> compile_object_here(const ObjectUnit& unit,
                                                  const Toolchain& toolchain,
                                                  const std::optional<Cache>& cache) {
  bump(Stat::compile_in_process);
  std::string bytes = compile_object(toolchain, unit.name, unit.source);
  if (cache) cache->put(CacheKind::kernel, unit.key, bytes);
  return load_object(unit, bytes);
}

std::shared_ptr<KernelObject> load_object_from_reply(const ObjectUnit& unit,
                                                     const UnitReply& reply) {
  ObjectUnit loaded = unit;
  loaded.key = reply.key;
  return load_object(loaded, reply.object);
}

}  // namespace kiln
