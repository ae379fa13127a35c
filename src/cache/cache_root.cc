#include "cache/cache_root.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "cache/cache_dir.h"
#include "kiln/error.h"
#include "support/text.h"

namespace kiln {

DirectoryHandle::DirectoryHandle(int fd)
    : fd_(new int(fd), [](int* p) {
        if (*p >= 0) ::close(*p);
        delete p;
      }) {}

namespace {

constexpr int kDirectoryFlags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;

[[noreturn]] void refuse(const std::string& path, const std::string& why) {
  throw Error(fmt::format("cache directory {}: {}", path, why));
}

// Directories that are never a cache: the root, the system's own, and the pseudo
// filesystems.
bool is_system_directory(const std::string& canonical) {
  static const char* const kRefused[] = {"/",    "/bin",   "/boot",  "/dev",    "/etc",   "/home",
                                         "/lib", "/lib32", "/lib64", "/libx32", "/media", "/mnt",
                                         "/opt", "/proc",  "/root",  "/run",    "/sbin",  "/srv",
                                         "/sys", "/tmp",   "/usr",   "/var"};
  for (const char* r : kRefused)
    if (canonical == r) return true;
  for (const char* prefix : {"/proc/", "/sys/", "/dev/"})
    if (canonical.rfind(prefix, 0) == 0) return true;
  return false;
}

void check_ancestor(const struct stat& st, const std::string& dir, const std::string& path) {
  if (st.st_uid != 0 && st.st_uid != geteuid())
    refuse(path, fmt::format("its ancestor {} is owned by uid {} (neither root nor this user, uid "
                             "{}), who could swap the cache for another; refusing to load code "
                             "from it",
                             dir, st.st_uid, geteuid()));
  const bool others_write = st.st_mode & (S_IWGRP | S_IWOTH);
  const bool sticky_root = (st.st_mode & S_ISVTX) && st.st_uid == 0;
  if (others_write && !sticky_root)
    refuse(path, fmt::format("its ancestor {} is writable by others (mode {:o}) and not a sticky "
                             "directory of root's; refusing to load code from below it",
                             dir, st.st_mode & 07777));
}

void check_private(int fd, const std::string& path) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) refuse(path, std::strerror(errno));
  check_private_directory(st, path, Privacy::owner_only, "cache directory");
}

}  // namespace

DirectoryHandle open_cache_root(const std::string& given) {
  std::string path = given;
  while (path.size() > 1 && path.back() == '/') path.pop_back();  // "link/" would follow it
  if (path.empty()) refuse(given, "empty path");
  if (path == "/") refuse(given, "the root directory is never a cache");
  char resolved[PATH_MAX];
  // Before anything is created or checked (the system's directories are not private).
  for (const std::string& spelling :
       {path, ::realpath(path.c_str(), resolved) ? std::string(resolved) : path})
    if (is_system_directory(spelling))
      refuse(given, fmt::format("{} is a system directory, never a cache", spelling));
  ensure_private_directory(path);  // created 0700, not a symlink (lstat)
  if (!::realpath(path.c_str(), resolved)) refuse(given, std::strerror(errno));
  const std::string canonical = resolved;
  // Walk the canonical path from /, one descriptor at a time and never through a symlink,
  // checking each ancestor; the last descriptor is the root.
  DirectoryHandle dir(::open("/", kDirectoryFlags));
  if (dir.fd() < 0) refuse(given, std::strerror(errno));
  std::string walked;
  const std::string relative = canonical.substr(1);
  const std::vector<std::string_view> parts = split_text(relative, '/');
  for (size_t i = 0; i < parts.size(); ++i) {
    struct stat st {};
    if (::fstat(dir.fd(), &st) != 0) refuse(given, std::strerror(errno));
    check_ancestor(st, walked.empty() ? "/" : walked, given);
    walked += "/" + std::string(parts[i]);
    DirectoryHandle next(::openat(dir.fd(), std::string(parts[i]).c_str(), kDirectoryFlags));
    if (next.fd() < 0)
      refuse(given, fmt::format("cannot open {} without following a symlink: {}", walked,
                                std::strerror(errno)));
    dir = next;
  }
  check_private(dir.fd(), given);
  return dir;
}

DirectoryHandle open_private_subdirectory(const DirectoryHandle& parent, const std::string& name,
                                          const std::string& path_for_errors) {
  if (::mkdirat(parent.fd(), name.c_str(), 0700) != 0 && errno != EEXIST)
    refuse(path_for_errors, fmt::format("cannot create it: {}", std::strerror(errno)));
  DirectoryHandle dir(::openat(parent.fd(), name.c_str(), kDirectoryFlags));
  if (dir.fd() < 0)
    refuse(path_for_errors,
           fmt::format("cannot open it without following a symlink: {}", std::strerror(errno)));
  check_private(dir.fd(), path_for_errors);
  return dir;
}

}  // namespace kiln
