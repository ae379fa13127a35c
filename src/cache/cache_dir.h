// The persistent cache's directory (docs/design.md §6). Loading a cached object runs its
// code, and entries hold a model's weights (graph constants), so the directory is private:
// created 0700, and refused when another user owns it or its mode gives the group or others
// any access (read, write or search).
#pragma once

#include <sys/stat.h>

#include <optional>
#include <string>

namespace kiln {

// The cache root: KILN_CACHE_DIR, else $XDG_CACHE_HOME/kiln, else $HOME/.cache/kiln;
// nullopt when KILN_FORCE_DISABLE_CACHES is set to 1. Re-read on every call (tests and
// tools change the environment). Does not create anything.
std::optional<std::string> cache_root();

// How private a directory must be: `owner_only` (the cache: nothing for group and
// others), or `not_writable_by_others` (a trace directory the user names, which holds
// data that is validated when read, never code that is loaded).
enum class Privacy { owner_only, not_writable_by_others };

// Creates `path` (and missing parents) with mode 0700 and checks that it is a directory
// (not a symlink) owned by this user, private as `privacy` says. Throws Error naming the
// directory (`what`: "cache directory", "trace directory"), the path and what is wrong.
// The same checks of a directory already stat-ed (fstat of a held descriptor: no race).
void check_private_directory(const struct stat& st, const std::string& path, Privacy privacy,
                             const char* what);
void ensure_private_directory(const std::string& path, Privacy privacy = Privacy::owner_only,
                              const char* what = "cache directory");

}  // namespace kiln
