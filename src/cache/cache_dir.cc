#include "cache/cache_dir.h"

#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "kiln/error.h"
#include "support/env.h"

namespace kiln {

std::optional<std::string> cache_root() {
  if (auto disable = env_value("KILN_FORCE_DISABLE_CACHES")) {
    if (*disable == "1") return std::nullopt;
    if (*disable != "0")
      throw Error(fmt::format("KILN_FORCE_DISABLE_CACHES: '{}' is not accepted (accepted: 0, 1)", *disable));
  }
  if (auto dir = env_value("KILN_CACHE_DIR")) return *dir;
  if (auto xdg = env_value("XDG_CACHE_HOME")) return *xdg + "/kiln";
  if (auto home = env_value("HOME")) return *home + "/.cache/kiln";
  throw Error("no cache directory: set KILN_CACHE_DIR (or HOME), or KILN_FORCE_DISABLE_CACHES=1");
}

void ensure_private_directory(const std::string& path) {
  if (path.empty()) throw Error("cache directory: empty path");
  // Parents first (mkdir -p), each new one private too.
  for (size_t slash = path.find('/', 1); slash != std::string::npos; slash = path.find('/', slash + 1))
    if (mkdir(path.substr(0, slash).c_str(), 0700) != 0 && errno != EEXIST)
      throw Error(fmt::format("cache directory {}: cannot create {}: {}", path, path.substr(0, slash),
                              std::strerror(errno)));
  if (mkdir(path.c_str(), 0700) != 0 && errno != EEXIST)
    throw Error(fmt::format("cache directory {}: cannot create it: {}", path, std::strerror(errno)));
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0)
    throw Error(fmt::format("cache directory {}: {}", path, std::strerror(errno)));
  if (!S_ISDIR(st.st_mode))
    throw Error(fmt::format("cache directory {}: not a directory (a symlink or a file is refused)", path));
  if (st.st_uid != geteuid())
    throw Error(fmt::format("cache directory {}: owned by uid {}, not by this user (uid {}); refusing "
                            "to load code from it", path, st.st_uid, geteuid()));
  if (st.st_mode & (S_IWGRP | S_IWOTH))
    throw Error(fmt::format("cache directory {}: writable by {} (mode {:o}); refusing to load code "
                            "from it (chmod 700 it)", path, (st.st_mode & S_IWOTH) ? "everyone" : "its group",
                            st.st_mode & 07777));
}

}  // namespace kiln
