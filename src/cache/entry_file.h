// Cache entry files (format 2): a header (magic, format version, the entry's kind and full
// key, payload size, and an HMAC-SHA256 (Nettle) of all of these and the payload under the user's
// cache secret) and the payload. Only kiln, running as this user, holds the secret, so a
// file copied from another key, planted, or built elsewhere and wrapped in a well-formed
// header fails its MAC: a miss, logged (KILN_LOGS=cache), never loaded. Written atomically
// (a private temp file renamed over the name) relative to the cache's directory
// descriptors, so readers see a whole entry or none; any number of processes may write the
// same key at once (the last rename wins, and every writer writes the same bytes).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "cache/cache_root.h"

namespace kiln {

// What names one entry: its kind ("kernel", "graph", "autotune"), its key, and its file in
// `dir` (`path` names it in messages).
struct EntryName {
  const DirectoryHandle& dir;
  std::string file;
  std::string_view kind;
  std::string_view key;
  std::string path;
};

// The user's cache secret: 32 random bytes in `root`/secret (0600, this user's, a regular
// file), created on first use; throws Error when the file is there but not like that.
std::string cache_secret(const DirectoryHandle& root, const std::string& root_path);

// Throws Error when the entry cannot be written (it leaves no temp file behind).
void write_entry_file(const EntryName& entry, std::string_view payload, const std::string& secret);
// The payload, or nullopt when the file is missing, not a regular file, truncated, of
// another kind or key, or fails its MAC (a miss: the caller rebuilds and rewrites it).
std::optional<std::string> read_entry_file(const EntryName& entry, const std::string& secret);

}  // namespace kiln
