// Reading files kiln did not write itself (graph text, constants, repro files, lookup
// tables, cache entries): only regular files, never more than a stated size, and never
// blocking on a FIFO or a device planted where a file was expected.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace kiln {

// The whole of the open file `fd` if it is a regular file of at most `max_bytes`; else
// nullopt with `*why` saying what it is ("a directory", "a FIFO", "larger than N bytes").
std::optional<std::string> read_regular_fd(int fd, int64_t max_bytes, std::string* why);
// The whole of `path` under the same rules (opened without blocking, so a FIFO is refused
// rather than waited on); throws Error naming the file and what is wrong with it.
std::string read_regular_file(const std::string& path, int64_t max_bytes);

}  // namespace kiln
