// Cache entry files: a header (magic, format version, payload size, XXH3 checksum of the
// payload) and the payload. Written atomically (a private temp file renamed over the
// name), so readers see a whole entry or none; any number of processes may write the same
// key at once (the last rename wins, and every writer writes the same bytes).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace kiln {

void write_entry_file(const std::string& path, std::string_view payload);

// The payload, or nullopt when the file is missing, truncated, or fails its checksum (a
// miss: the caller rebuilds and rewrites it). Corrupt entries are logged (KILN_LOGS=cache).
std::optional<std::string> read_entry_file(const std::string& path);

}  // namespace kiln
