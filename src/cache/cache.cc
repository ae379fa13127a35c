#include "cache/cache.h"

#include <algorithm>

#include <fmt/format.h>
#include <xxhash.h>

#include <filesystem>

#include "cache/cache_dir.h"
#include "cache/entry_file.h"
#include "kiln/error.h"

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

Cache::Cache(std::string root) : root_(std::move(root)) {
  ensure_private_directory(root_);
  for (CacheKind kind : kAllCacheKinds)
    ensure_private_directory(fmt::format("{}/{}", root_, subdirectory(kind)));
}

std::string Cache::path(CacheKind kind, const std::string& key) const {
  if (!is_key(key)) throw Error(fmt::format("cache: '{}' is not a cache key", key));
  return fmt::format("{}/{}/{}{}", root_, subdirectory(kind), key, extension(kind));
}

std::optional<std::string> Cache::get(CacheKind kind, const std::string& key) const {
  return read_entry_file(path(kind, key));
}

void Cache::put(CacheKind kind, const std::string& key, std::string_view payload) const {
  write_entry_file(path(kind, key), payload);
}

bool Cache::contains(CacheKind kind, const std::string& key) const {
  std::error_code ec;
  return std::filesystem::exists(path(kind, key), ec);
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
