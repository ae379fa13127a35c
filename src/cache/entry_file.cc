#include "cache/entry_file.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <nettle/hmac.h>
#include <nettle/memops.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>

#include "kiln/error.h"
#include "support/files.h"
#include "support/log.h"

namespace kiln {

namespace {

constexpr char kMagic[8] = {'K', 'I', 'L', 'N', 'E', 'N', 'T', '2'};
constexpr uint32_t kFormatVersion = 2;
constexpr int64_t kMaxEntryBytes = int64_t{1} << 30;  // objects and plans are far smaller
constexpr size_t kSecretBytes = 32;
constexpr size_t kMacBytes = 32;

struct Header {
  char magic[8];
  uint32_t version;
  uint32_t reserved;
  char kind[16];  // NUL-padded
  char key[32];
  uint64_t size;
  unsigned char mac[kMacBytes];  // of the header with this field zeroed, then the payload
};
static_assert(sizeof(Header) == 104);  // no padding: the MAC covers every byte

std::atomic<uint64_t> temp_counter{0};

std::string temp_name(const std::string& file) {
  return fmt::format("{}.tmp.{}.{}", file, getpid(), temp_counter++);
}

// HMAC-SHA256 (Nettle's: no global state, no library context and no exit handler, so a
// background compile finishing while the process exits can still use it) of the header,
// its mac field zeroed, and the payload.
void entry_mac(const Header& header, std::string_view payload, const std::string& secret,
               unsigned char out[kMacBytes]) {
  Header h = header;
  std::memset(h.mac, 0, sizeof h.mac);
  hmac_sha256_ctx ctx;
  hmac_sha256_set_key(&ctx, secret.size(), reinterpret_cast<const uint8_t*>(secret.data()));
  hmac_sha256_update(&ctx, sizeof h, reinterpret_cast<const uint8_t*>(&h));
  hmac_sha256_update(&ctx, payload.size(), reinterpret_cast<const uint8_t*>(payload.data()));
  hmac_sha256_digest(&ctx, kMacBytes, out);
}

Header header_of(const EntryName& entry, uint64_t size) {
  Header h{};
  std::memcpy(h.magic, kMagic, sizeof kMagic);
  h.version = kFormatVersion;
  std::memcpy(h.kind, entry.kind.data(), std::min(entry.kind.size(), sizeof h.kind - 1));
  std::memcpy(h.key, entry.key.data(), std::min(entry.key.size(), sizeof h.key));
  h.size = size;
  return h;
}

// Reads the regular file `file` of `dir` (never a symlink, never blocking on a FIFO).
// `*missing`: there is no such file (a plain miss, not worth a log line).
std::optional<std::string> read_file_at(const DirectoryHandle& dir, const std::string& file,
                                        int64_t max_bytes, std::string* why, bool* missing) {
  int fd =
      ::openat(dir.fd(), file.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
  *missing = fd < 0 && errno == ENOENT;
  if (fd < 0) {
    *why = errno == ELOOP ? "a symlink, not a regular file" : std::strerror(errno);
    return std::nullopt;
  }
  std::optional<std::string> data = read_regular_fd(fd, max_bytes, why);
  ::close(fd);
  return data;
}

}  // namespace

std::string cache_secret(const DirectoryHandle& root, const std::string& root_path) {
  const std::string path = root_path + "/secret";
  for (int attempt = 0; attempt < 2; ++attempt) {
    int fd = ::openat(root.fd(), "secret", O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd >= 0) {
      struct stat st {};
      std::string why;
      const bool owned = ::fstat(fd, &st) == 0 && st.st_uid == geteuid() &&
                         (st.st_mode & (S_IRWXG | S_IRWXO)) == 0;
      std::optional<std::string> secret =
          owned ? read_regular_fd(fd, kSecretBytes, &why) : std::nullopt;
      ::close(fd);
      if (!owned)
        throw Error(
            fmt::format("cache secret {}: not this user's private file (mode {:o}, uid "
                        "{}); refusing the cache (remove it to start afresh)",
                        path, st.st_mode & 07777, st.st_uid));
      if (!secret || secret->size() != kSecretBytes)
        throw Error(
            fmt::format("cache secret {}: {}; refusing the cache (remove it to start "
                        "afresh)",
                        path, secret ? "not 32 bytes" : why));
      return *secret;
    }
    if (errno != ENOENT)
      throw Error(fmt::format("cache secret {}: {}", path, std::strerror(errno)));
    // First use: a private temp file, linked in place only if no other process got there
    // first (link fails on an existing name; then the loop reads that one).
    std::string bytes(kSecretBytes, '\0');
    if (::getrandom(bytes.data(), bytes.size(), 0) != static_cast<ssize_t>(bytes.size()))
      throw Error(fmt::format("cache secret {}: getrandom: {}", path, std::strerror(errno)));
    const std::string tmp = temp_name("secret");
    int out = ::openat(root.fd(), tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                       0600);
    if (out < 0) throw Error(fmt::format("cache secret {}: {}", path, std::strerror(errno)));
    try {
      write_all(out, bytes, path);
    } catch (...) {
      ::close(out);
      ::unlinkat(root.fd(), tmp.c_str(), 0);
      throw;
    }
    ::close(out);
    const int linked = ::linkat(root.fd(), tmp.c_str(), root.fd(), "secret", 0);
    const int err = errno;
    ::unlinkat(root.fd(), tmp.c_str(), 0);
    if (linked != 0 && err != EEXIST)
      throw Error(fmt::format("cache secret {}: {}", path, std::strerror(err)));
  }
  throw Error(fmt::format("cache secret {}: could not be created", path));
}

void write_entry_file(const EntryName& entry, std::string_view payload, const std::string& secret) {
  Header h = header_of(entry, payload.size());
  entry_mac(h, payload, secret, h.mac);
  const std::string tmp = temp_name(entry.file);
  int fd = ::openat(entry.dir.fd(), tmp.c_str(),
                    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0)
    throw Error(fmt::format("cache: cannot create a temp file for {}: {}", entry.path,
                            std::strerror(errno)));
  try {
    write_all(fd, std::string_view(reinterpret_cast<const char*>(&h), sizeof h), entry.path);
    write_all(fd, payload, entry.path);
  } catch (...) {
    ::close(fd);
    ::unlinkat(entry.dir.fd(), tmp.c_str(), 0);
    throw;
  }
  ::close(fd);
  if (::renameat(entry.dir.fd(), tmp.c_str(), entry.dir.fd(), entry.file.c_str()) != 0) {
    int err = errno;
    ::unlinkat(entry.dir.fd(), tmp.c_str(), 0);
    throw Error(
        fmt::format("cache: cannot rename a temp file to {}: {}", entry.path, std::strerror(err)));
  }
}

std::optional<std::string> read_entry_file(const EntryName& entry, const std::string& secret) {
  auto corrupt = [&](const std::string& why) -> std::optional<std::string> {
    if (log_enabled("cache"))
      log_line("cache", fmt::format("{}: {}; treated as a miss", entry.path, why));
    return std::nullopt;
  };
  std::string why;
  bool missing = false;
  std::optional<std::string> read =
      read_file_at(entry.dir, entry.file, kMaxEntryBytes, &why, &missing);
  if (!read) return missing ? std::nullopt : corrupt(why);
  const std::string& data = *read;
  Header h{};
  if (data.size() < sizeof h) return corrupt("shorter than its header");
  std::memcpy(&h, data.data(), sizeof h);
  if (std::memcmp(h.magic, kMagic, sizeof kMagic) != 0) return corrupt("not a kiln cache entry");
  if (h.version != kFormatVersion) return corrupt("another entry format version");
  const Header expected = header_of(entry, h.size);
  if (std::memcmp(h.kind, expected.kind, sizeof h.kind) != 0 ||
      std::memcmp(h.key, expected.key, sizeof h.key) != 0)
    return corrupt("the entry of another kind or key");
  if (h.size != data.size() - sizeof h) return corrupt("truncated or padded");
  const std::string_view payload(data.data() + sizeof h, h.size);
  unsigned char mac[kMacBytes];
  entry_mac(h, payload, secret, mac);
  if (!memeql_sec(mac, h.mac, kMacBytes))
    return corrupt("its MAC does not match (not written by kiln for this user and key)");
  return std::string(payload);
}

}  // namespace kiln
