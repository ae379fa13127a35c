#include "support/files.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "kiln/error.h"

namespace kiln {

namespace {

const char* file_kind(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

}  // namespace

std::optional<std::string> read_regular_fd(int fd, int64_t max_bytes, std::string* why) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    *why = std::strerror(errno);
    return std::nullopt;
  }
  if (!S_ISREG(st.st_mode)) {
    *why = fmt::format("{}, not a regular file", file_kind(st.st_mode));
    return std::nullopt;
  }
  if (st.st_size > max_bytes) {
    *why = fmt::format("{} bytes, larger than the {} bytes accepted", st.st_size, max_bytes);
    return std::nullopt;
  }
  // Read what the size says, and one byte more to see a file that grew meanwhile.
  std::string data(static_cast<size_t>(st.st_size) + 1, '\0');
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::read(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      *why = std::strerror(errno);
      return std::nullopt;
    }
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  if (done > static_cast<size_t>(st.st_size)) {
    *why = "it grew while being read";
    return std::nullopt;
  }
  data.resize(done);
  return data;
}

void write_all(int fd, std::string_view bytes, const std::string& path) {
  const char* p = bytes.data();
  size_t left = bytes.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw Error(fmt::format("{}: cannot write: {}", path, std::strerror(errno)));
    p += n;
    left -= static_cast<size_t>(n);
  }
}

void write_file_atomically(const std::string& path, std::string_view bytes) {
  static std::atomic<uint64_t> counter{0};
  const std::string tmp = fmt::format("{}.tmp.{}.{}", path, getpid(), counter++);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) throw Error(fmt::format("{}: cannot create: {}", tmp, std::strerror(errno)));
  try {
    write_all(fd, bytes, path);
  } catch (...) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    throw Error(fmt::format("{}: cannot write: {}", path, std::strerror(err)));
  }
}

namespace {

std::string temp_root() {
  const char* base = std::getenv("TMPDIR");
  return base && *base ? base : "/tmp";
}

}  // namespace

std::string make_private_temp_directory(const std::string& prefix) {
  std::string templ = fmt::format("{}/{}-XXXXXX", temp_root(), prefix);
  if (!::mkdtemp(templ.data()))
    throw Error(
        fmt::format("cannot create a temporary directory {}: {}", templ, std::strerror(errno)));
  return templ;
}

std::string scratch_prefix(int pid) { return fmt::format("kiln-{}", pid); }

void remove_scratch_of(int pid) {
  const std::string prefix = scratch_prefix(pid) + "-";
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(temp_root(), ec)) {
    const std::string name = e.path().filename().string();
    struct stat st {};
    if (name.rfind(prefix, 0) != 0 || name.size() != prefix.size() + 6 ||
        ::lstat(e.path().c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid())
      continue;
    std::filesystem::remove_all(e.path(), ec);
  }
}

std::string read_regular_file(const std::string& path, int64_t max_bytes) {
  // O_NONBLOCK: opening a FIFO for reading returns at once instead of waiting for a writer
  // (fstat then refuses it); it changes nothing for regular files.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) throw Error(fmt::format("{}: cannot open: {}", path, std::strerror(errno)));
  std::string why;
  std::optional<std::string> data = read_regular_fd(fd, max_bytes, &why);
  ::close(fd);
  if (!data) throw Error(fmt::format("{}: cannot read: {}", path, why));
  return *data;
}

}  // namespace kiln
