// The persistent cache's directory (DESIGN §6). Loading a cached object runs its code, so
// the directory must be private: created 0700, and refused when another user owns it or
// anyone else may write to it.
#pragma once

#include <optional>
#include <string>

namespace kiln {

// The cache root: KILN_CACHE_DIR, else $XDG_CACHE_HOME/kiln, else $HOME/.cache/kiln;
// nullopt when KILN_FORCE_DISABLE_CACHES is set to 1. Re-read on every call (tests and
// tools change the environment). Does not create anything.
std::optional<std::string> cache_root();

// Creates `path` (and missing parents) with mode 0700 and checks that it is a directory
// owned by this user that neither group nor others can write. Throws Error naming the
// path and what is wrong with it.
void ensure_private_directory(const std::string& path);

}  // namespace kiln
