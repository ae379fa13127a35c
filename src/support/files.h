// Reading files kiln did not write itself (graph text, constants, repro files, lookup
// tables, cache entries): only regular files, never more than a stated size, and never
// blocking on a FIFO or a device planted where a file was expected.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace kiln {

// The whole of the open file `fd` if it is a regular file of at most `max_bytes`; else
// nullopt with `*why` saying what it is ("a directory", "a FIFO", "larger than N bytes").
std::optional<std::string> read_regular_fd(int fd, int64_t max_bytes, std::string* why);
// Writes all of `bytes` to `fd` (retrying short writes); Error naming `path` otherwise.
void write_all(int fd, std::string_view bytes, const std::string& path);
// Writes `bytes` to `path` through a new temp file beside it (O_EXCL|O_NOFOLLOW, mode
// 0600: never through a symlink or over a file someone planted), renamed over `path`; the
// temp file is removed on every failure. Throws Error naming the file.
void write_file_atomically(const std::string& path, std::string_view bytes);
// A new private directory (mkdtemp, 0700) named `prefix`-XXXXXX under $TMPDIR or /tmp.
std::string make_private_temp_directory(const std::string& prefix);
// The prefix of a compile's scratch directories in process `pid` ("kiln-PID"), and removing
// those that process left behind (it was killed mid-compile): only directories, not
// symlinks, owned by this user.
std::string scratch_prefix(int pid);
void remove_scratch_of(int pid);

// The whole of `path` under the same rules (opened without blocking, so a FIFO is refused
// rather than waited on); throws Error naming the file and what is wrong with it.
std::string read_regular_file(const std::string& path, int64_t max_bytes);

}  // namespace kiln
