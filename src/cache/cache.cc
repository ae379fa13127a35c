#include "cache/cache.h"

#include <algorithm>

#include <fmt/format.h>
#include <xxhash.h>

#include <filesystem>

#include <fcntl.h>
#include <sys/stat.h>

#include "cache/cache_dir.h"
#include "cache/cache_root.h"
#include "cache/entry_file.h"
#include "kiln/error.h"
#include "support/log.h"

namespace kiln {

namespace {

const char* subdirectory(CacheKind kind) {
  switch (kind) {
    case CacheKind::kernel:
      return "kernels";
    case CacheKind::graph:
      return "graphs";
    case CacheKind::autotune:
      return "autotune";
  }
  return "?";
}

const char* extension(CacheKind kind) {
  switch (kind) {
    case CacheKind::kernel:
      return ".so";
    case CacheKind::graph:
      return ".graph";
    case CacheKind::autotune:
      return ".json";
  }
  return "?";
}

bool is_key(const std::string& key) {
  return key.size() == 32 && key.find_first_not_of("0123456789abcdef") == std::string::npos;
}

}  // namespace

std::string content_key(std::string_view text) {
  XXH128_hash_t h = XXH3_128bits(text.data(), text.size());
  return fmt::format("{:016x}{:016x}", h.high64, h.low64);
}

std::string kernel_key(std::string_view toolchain_identity, std::string_view source) {
  std::string text;
  text.reserve(toolchain_identity.size() + 1 + source.size());
  text.append(toolchain_identity).append("\n").append(source);
  return content_key(text);
}

std::optional<Cache> Cache::open() {
  std::optional<std::string> root = cache_root();
  if (!root) return std::nullopt;
  return Cache(*root);
}

struct Cache::Handles {
  DirectoryHandle root;
  DirectoryHandle kinds[std::size(kAllCacheKinds)];
  std::string secret;
  const DirectoryHandle& of(CacheKind kind) const { return kinds[static_cast<size_t>(kind)]; }
};

Cache::Cache(std::string root) : root_(std::move(root)) {
  auto handles = std::make_shared<Handles>();
  handles->root = open_cache_root(root_);
  for (CacheKind kind : kAllCacheKinds)
    handles->kinds[static_cast<size_t>(kind)] = open_private_subdirectory(
        handles->root, subdirectory(kind), fmt::format("{}/{}", root_, subdirectory(kind)));
  handles->secret = cache_secret(handles->root, root_);
  handles_ = std::move(handles);
}

std::string Cache::file(CacheKind kind, const std::string& key) const {
  if (!is_key(key)) throw Error(fmt::format("cache: '{}' is not a cache key", key));
  return key + extension(kind);
}

std::optional<std::string> Cache::get(CacheKind kind, const std::string& key) const {
  const std::string name = file(kind, key);
  return read_entry_file({handles_->of(kind), name, subdirectory(kind), key,
                          fmt::format("{}/{}/{}", root_, subdirectory(kind), name)},
                         handles_->secret);
}

void Cache::put(CacheKind kind, const std::string& key, std::string_view payload) const {
  const std::string name = file(kind, key);
  try {
    write_entry_file({handles_->of(kind), name, subdirectory(kind), key,
                      fmt::format("{}/{}/{}", root_, subdirectory(kind), name)},
                     payload, handles_->secret);
  } catch (const Error& e) {
    warn_once(fmt::format("cache put {}", root_),
              fmt::format("{}; going on without caching it (and any later entry that fails "
                          "alike)",
                          e.what()));
  }
}

bool Cache::contains(CacheKind kind, const std::string& key) const {
  struct stat st {};
  return ::fstatat(handles_->of(kind).fd(), file(kind, key).c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
}

namespace {

// The regular files of `dir` named *`extension`: how many, and their bytes.
Cache::Usage files_usage(const std::string& dir, std::string_view extension) {
  Cache::Usage u;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    if (!e.is_regular_file() || e.path().extension() != extension) continue;
    ++u.entries;
    u.bytes += static_cast<int64_t>(e.file_size(ec));
  }
  return u;
}

}  // namespace

Cache::Usage Cache::usage(CacheKind kind) const {
  return files_usage(fmt::format("{}/{}", root_, subdirectory(kind)), extension(kind));
}

Cache::Usage Cache::sources_usage() const { return files_usage(root_ + "/sources", ".c"); }

std::vector<std::string> Cache::keys(CacheKind kind) const {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e :
       std::filesystem::directory_iterator(fmt::format("{}/{}", root_, subdirectory(kind)), ec)) {
    std::string key = e.path().stem().string();
    if (e.is_regular_file() && e.path().extension() == extension(kind) && is_key(key))
      out.push_back(key);
  }
  std::sort(out.begin(), out.end());
  return out;
}

void Cache::clear() const {
  std::vector<std::string> dirs = {
      root_ + "/sources"};  // kernel sources kept for profiles (observe/kernel_files.h)
  for (CacheKind kind : kAllCacheKinds)
    dirs.push_back(fmt::format("{}/{}", root_, subdirectory(kind)));
  for (const std::string& dir : dirs) {
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(dir, ec))
      if (e.is_regular_file()) std::filesystem::remove(e.path(), ec);
  }
}

}  // namespace kiln
