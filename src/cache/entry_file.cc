#include "cache/entry_file.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>
#include <xxhash.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>

#include "kiln/error.h"
#include "support/files.h"
#include "support/log.h"

namespace kiln {

namespace {

constexpr char kMagic[8] = {'K', 'I', 'L', 'N', 'E', 'N', 'T', '1'};
constexpr uint32_t kFormatVersion = 1;
constexpr int64_t kMaxEntryBytes = int64_t{1} << 30;  // objects and plans are far smaller

struct Header {
  char magic[8];
  uint32_t version;
  uint32_t reserved;
  uint64_t size;
  uint64_t checksum;
};
static_assert(sizeof(Header) == 32);

void write_all(int fd, const void* data, size_t size, const std::string& path) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = ::write(fd, p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw Error(fmt::format("cache: cannot write {}: {}", path, std::strerror(errno)));
    p += n;
    size -= static_cast<size_t>(n);
  }
}

}  // namespace

void write_entry_file(const std::string& path, std::string_view payload) {
  static std::atomic<uint64_t> counter{0};
  std::string tmp = fmt::format("{}.tmp.{}.{}", path, getpid(), counter++);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) throw Error(fmt::format("cache: cannot create {}: {}", tmp, std::strerror(errno)));
  Header h{};
  std::memcpy(h.magic, kMagic, sizeof kMagic);
  h.version = kFormatVersion;
  h.size = payload.size();
  h.checksum = XXH3_64bits(payload.data(), payload.size());
  try {
    write_all(fd, &h, sizeof h, tmp);
    write_all(fd, payload.data(), payload.size(), tmp);
  } catch (...) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    throw Error(fmt::format("cache: cannot rename {} to {}: {}", tmp, path, std::strerror(err)));
  }
}

std::optional<std::string> read_entry_file(const std::string& path) {
  auto corrupt = [&](const std::string& why) -> std::optional<std::string> {
    if (log_enabled("cache"))
      log_line("cache", fmt::format("{}: {}; treated as a miss", path, why));
    return std::nullopt;
  };
  // Never a symlink, and never blocking on a FIFO planted at an entry's path.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) return std::nullopt;
  std::string why;
  std::optional<std::string> read = read_regular_fd(fd, kMaxEntryBytes, &why);
  ::close(fd);
  if (!read) return corrupt(why);
  const std::string& data = *read;
  Header h{};
  if (data.size() < sizeof h) return corrupt("shorter than its header");
  std::memcpy(&h, data.data(), sizeof h);
  if (std::memcmp(h.magic, kMagic, sizeof kMagic) != 0) return corrupt("not a kiln cache entry");
  if (h.version != kFormatVersion) return corrupt("another entry format version");
  if (h.size != data.size() - sizeof h) return corrupt("truncated or padded");
  if (XXH3_64bits(data.data() + sizeof h, h.size) != h.checksum)
    return corrupt("checksum mismatch");
  return data.substr(sizeof h);
}

}  // namespace kiln
