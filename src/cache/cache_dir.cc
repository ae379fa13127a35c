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
      throw Error(fmt::format("KILN_FORCE_DISABLE_CACHES: '{}' is not accepted (accepted: 0, 1)",
                              *disable));
  }
  if (auto dir = env_value("KILN_CACHE_DIR")) return *dir;
  if (auto xdg = env_value("XDG_CACHE_HOME")) return *xdg + "/kiln";
  if (auto home = env_value("HOME")) return *home + "/.cache/kiln";
  throw Error("no cache directory: set KILN_CACHE_DIR (or HOME), or KILN_FORCE_DISABLE_CACHES=1");
}

void ensure_private_directory(const std::string& path, Privacy privacy, const char* what) {
  if (path.empty()) throw Error(fmt::format("{}: empty path", what));
  // Parents first (mkdir -p), each new one private too.
  for (size_t slash = path.find('/', 1); slash != std::string::npos;
       slash = path.find('/', slash + 1))
    if (mkdir(path.substr(0, slash).c_str(), 0700) != 0 && errno != EEXIST)
      throw Error(fmt::format("{} {}: cannot create {}: {}", what, path, path.substr(0, slash),
                              std::strerror(errno)));
  if (mkdir(path.c_str(), 0700) != 0 && errno != EEXIST)
    throw Error(fmt::format("{} {}: cannot create it: {}", what, path, std::strerror(errno)));
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0)
    throw Error(fmt::format("{} {}: {}", what, path, std::strerror(errno)));
  check_private_directory(st, path, privacy, what);
}

void check_private_directory(const struct stat& st, const std::string& path, Privacy privacy,
                             const char* what) {
  if (!S_ISDIR(st.st_mode))
    throw Error(fmt::format("{} {}: not a directory (a symlink or a file is refused)", what, path));
  if (st.st_uid != geteuid())
    throw Error(
        fmt::format("{} {}: owned by uid {}, not by this user (uid {}); refusing "
                    "to load code from it",
                    what, path, st.st_uid, geteuid()));
  const mode_t refused = privacy == Privacy::owner_only ? (S_IRWXG | S_IRWXO) : (S_IWGRP | S_IWOTH);
  if (st.st_mode & refused) {
    const bool writable = st.st_mode & (S_IWGRP | S_IWOTH);
    const bool others = writable ? st.st_mode & S_IWOTH : st.st_mode & S_IRWXO;
    const char* refusal = privacy == Privacy::not_writable_by_others ? "write into it"
                          : writable                                 ? "load code from it"
                                     : "keep kernels and weights in it";
    throw Error(fmt::format("{} {}: {} by {} (mode {:o}); refusing to {} (chmod 700 it)", what,
                            path, writable ? "writable" : "readable",
                            others ? "everyone" : "its group", st.st_mode & 07777, refusal));
  }
}

}  // namespace kiln
