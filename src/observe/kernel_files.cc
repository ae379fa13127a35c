#include "observe/kernel_files.h"

#include <fmt/format.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "cache/cache.h"
#include "cache/cache_dir.h"
#include "support/log.h"

namespace kiln {

namespace {

std::string sources_directory() {
  std::optional<std::string> root = cache_root();
  std::string base =
      root ? *root
           : fmt::format("{}/kiln-{}", std::filesystem::temp_directory_path().string(), getuid());
  ensure_private_directory(base);
  std::string dir = base + "/sources";
  ensure_private_directory(dir);
  return dir;
}

}  // namespace

KernelFile kernel_source_file(const std::string& source) {
  KernelFile file{"", content_key(source)};
  try {
    const std::string dir = sources_directory();  // per call: KILN_CACHE_DIR may change
    std::string path = fmt::format("{}/{}.c", dir, file.hash);
    if (!std::filesystem::exists(path)) {
      std::string tmp =
          fmt::format("{}.tmp.{}.{}", path, getpid(), static_cast<const void*>(&file));
      {
        std::ofstream out(tmp, std::ios::binary);
        out << source;
        if (!out) throw std::runtime_error("cannot write " + tmp);
      }
      std::filesystem::rename(tmp, path);
    }
    file.path = std::move(path);
  } catch (const std::exception& e) {
    if (log_enabled("cache"))
      log_line("cache", fmt::format("kernel source file not written: {}", e.what()));
  }
  return file;
}

}  // namespace kiln
