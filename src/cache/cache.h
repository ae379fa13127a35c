// The persistent caches (docs/design.md §6) under the private cache root: compiled kernel objects
// (kernels/KEY.so), compiled graphs (graphs/KEY.graph: the plan that runs a graph and the
// keys of its objects) and tuned kernel configs (autotune/KEY.json). Keys are content hashes (32
// hex digits) computed by the caller from everything that changes the entry; entries are files of
// entry_file.h, each recording its kind and key under an HMAC with the user's secret (the file
// `secret` in the root). Every mode and worker start method shares the same entries.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kiln {

enum class CacheKind { kernel, graph, autotune };
constexpr CacheKind kAllCacheKinds[] = {CacheKind::kernel, CacheKind::graph, CacheKind::autotune};

class Cache {
 public:
  // The cache under cache_root(), held open and checked (cache_root.h), with its secret;
  // nullopt when caches are disabled (KILN_FORCE_DISABLE_CACHES=1).
  static std::optional<Cache> open();
  explicit Cache(std::string root);

  // The entry kiln wrote for this kind and key (entry_file.h), or nullopt: missing, or
  // anything else there (a logged miss).
  std::optional<std::string> get(CacheKind kind, const std::string& key) const;
  // Writes the entry; a failure (a full disk, a directory at its name) is a warning, once
  // per process, and the caller goes on with what it has.
  void put(CacheKind kind, const std::string& key, std::string_view payload) const;
  bool contains(CacheKind kind, const std::string& key) const;  // exists (not validated)

  struct Usage {
    int64_t entries = 0;
    int64_t bytes = 0;
  };
  Usage usage(CacheKind kind) const;
  // The kernel sources kept beside the entries for profiles (sources/HASH.c,
  // observe/kernel_files.h); clear() removes them too.
  Usage sources_usage() const;
  std::vector<std::string> keys(CacheKind kind) const;  // of the entries present, sorted
  void clear() const;  // removes every entry (and stray temp files) of every kind
  const std::string& root() const { return root_; }

 private:
  struct Handles;
  std::string file(CacheKind kind, const std::string& key) const;  // checks the key
  std::string root_;
  std::shared_ptr<const Handles> handles_;  // the root's and the kinds' directories, the secret
};

// A cache key: the XXH3-128 digest of `text`, as 32 hex digits.
std::string content_key(std::string_view text);
// A translation unit's kernel-cache key: its source under a toolchain's identity
// (Toolchain::identity()). The host and the compile workers both compute it here.
std::string kernel_key(std::string_view toolchain_identity, std::string_view source);

}  // namespace kiln
