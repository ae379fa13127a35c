// The cache root held open (docs/design.md §6). Loading a cached object runs its code, so
// the cache is reached only through a directory descriptor whose path was checked once:
// every ancestor owned by root or this user and not writable by anyone else (unless it is
// root's and sticky, like /tmp), the directory itself this user's and private (0700), no
// symlink on the way. Entries are then opened relative to the descriptors, so swapping a
// directory on the path afterwards (a parent another user controls) changes nothing.
#pragma once

#include <memory>
#include <string>

namespace kiln {

// An open directory descriptor, closed with the last copy.
class DirectoryHandle {
 public:
  DirectoryHandle() = default;
  explicit DirectoryHandle(int fd);
  int fd() const { return fd_ ? *fd_ : -1; }

 private:
  std::shared_ptr<int> fd_;
};

// Creates `path` (and missing parents, 0700) and opens it as checked above; throws Error
// naming the directory, the path and what is wrong. The root itself and system
// directories (/, /usr, /etc, /proc, ...) are refused.
DirectoryHandle open_cache_root(const std::string& path);
// The subdirectory `name` of `parent`, created 0700 if missing, opened without following a
// symlink and checked (a directory, this user's, private).
DirectoryHandle open_private_subdirectory(const DirectoryHandle& parent, const std::string& name,
                                          const std::string& path_for_errors);

}  // namespace kiln
