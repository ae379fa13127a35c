#include "observe/trace_log.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include "cache/cache_dir.h"
#include "support/env.h"
#include "support/log.h"
#include "wire/frame.h"

namespace kiln {

std::optional<std::string> trace_directory() {
  std::optional<std::string> dir = env_value("KILN_TRACE");
  if (!dir) return std::nullopt;
  ensure_private_directory(*dir, Privacy::not_writable_by_others, "trace directory");
  return dir;
}

bool trace_enabled() { return env_value("KILN_TRACE").has_value(); }

void trace_artifact(std::string_view artifact, nlohmann::json fields) {
  if (!trace_enabled()) return;
  try {
    const std::string path = fmt::format("{}/kiln_trace_{}.jsonl", *trace_directory(), getpid());
    fields["artifact"] = artifact;
    fields["ts_us"] = monotonic_seconds() * 1e6;
    fields["pid"] = getpid();
    const std::string line =
        fields.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) throw std::runtime_error(fmt::format("{}: cannot open", path));
    ssize_t written = ::write(fd, line.data(), line.size());
    ::close(fd);
    if (written != static_cast<ssize_t>(line.size()))
      throw std::runtime_error(fmt::format("{}: short write", path));
  } catch (const std::exception& e) {
    // Tracing must not fail the program it watches; say so once per failure.
    fmt::print(stderr, "kiln: KILN_TRACE: {} not written: {}\n", artifact, e.what());
  }
}

}  // namespace kiln
