#include "wire/frame.h"

#include <fmt/format.h>
#include <poll.h>
#include <unistd.h>

#include <sys/socket.h>

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <ctime>

namespace kiln {

namespace {

constexpr char kMagic[4] = {'K', 'I', 'L', 'W'};
constexpr uint32_t kMaxFields = 64;
constexpr uint32_t kMaxFieldName = 64;

void put_u16(std::string& out, uint16_t v) {
  for (int i = 0; i < 2; ++i) out.push_back(static_cast<char>(v >> (8 * i)));
}
void put_u32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>(v >> (8 * i)));
}
void put_u64(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>(v >> (8 * i)));
}
uint64_t get_le(std::string_view bytes, size_t at, int width) {
  uint64_t v = 0;
  for (int i = 0; i < width; ++i)
    v |= static_cast<uint64_t>(static_cast<uint8_t>(bytes[at + i])) << (8 * i);
  return v;
}

bool known_type(uint16_t t) { return t >= 1 && t <= 9; }

}  // namespace

const char* message_type_name(MessageType type) {
  switch (type) {
    case MessageType::hello:
      return "hello";
    case MessageType::compile_graph:
      return "compile_graph";
    case MessageType::compile_unit:
      return "compile_unit";
    case MessageType::reply:
      return "reply";
    case MessageType::shutdown:
      return "shutdown";
    case MessageType::fork_worker:
      return "fork_worker";
    case MessageType::forked:
      return "forked";
    case MessageType::worker_exit:
      return "worker_exit";
    case MessageType::benchmark:
      return "benchmark";
  }
  return "unknown";
}

const std::string& Frame::at(std::string_view name) const {
  auto it = fields.find(name);
  if (it == fields.end())
    throw WireError(
        fmt::format("{} message without its '{}' field", message_type_name(type), name));
  return it->second;
}

// Payload: u32 field count, then per field u32 name length, name, u64 value length, value.
std::string encode_fields(const Fields& fields) {
  std::string payload;
  put_u32(payload, static_cast<uint32_t>(fields.size()));
  for (const auto& [name, value] : fields) {
    put_u32(payload, static_cast<uint32_t>(name.size()));
    payload += name;
    put_u64(payload, value.size());
    payload += value;
  }
  return payload;
}

std::string encode_frame(MessageType type, const Fields& fields) {
  std::string payload = encode_fields(fields);
  if (payload.size() > kMaxFramePayload)
    throw WireError(fmt::format("{} message of {} bytes is over the {} byte frame limit",
                                message_type_name(type), payload.size(), kMaxFramePayload));
  std::string frame(kMagic, sizeof kMagic);
  put_u16(frame, kWireVersion);
  put_u16(frame, static_cast<uint16_t>(type));
  put_u32(frame, static_cast<uint32_t>(payload.size()));
  put_u32(frame, 0);  // reserved
  return frame + payload;
}

uint32_t decode_frame_header(std::string_view header, MessageType* type) {
  if (header.size() != kFrameHeaderSize) throw WireError("short frame header");
  if (std::memcmp(header.data(), kMagic, sizeof kMagic) != 0)
    throw WireError("bad frame magic (not a kiln worker stream)");
  auto version = static_cast<uint16_t>(get_le(header, 4, 2));
  if (version != kWireVersion)
    throw WireError(
        fmt::format("wire protocol version {} (this kiln speaks {})", version, kWireVersion));
  auto t = static_cast<uint16_t>(get_le(header, 6, 2));
  if (!known_type(t)) throw WireError(fmt::format("unknown message type {}", t));
  auto length = static_cast<uint32_t>(get_le(header, 8, 4));
  if (length > kMaxFramePayload)
    throw WireError(fmt::format("frame of {} bytes is over the limit", length));
  if (get_le(header, 12, 4) != 0) throw WireError("reserved header bytes are not zero");
  *type = static_cast<MessageType>(t);
  return length;
}

Fields decode_fields(std::string_view payload) {
  size_t at = 0;
  auto need = [&](uint64_t n, const char* what) {
    if (n > payload.size() - at)
      throw WireError(fmt::format("frame payload truncated in {}", what));
  };
  need(4, "the field count");
  uint64_t count = get_le(payload, at, 4);
  at += 4;
  if (count > kMaxFields)
    throw WireError(fmt::format("{} fields in one frame (at most {})", count, kMaxFields));
  Fields fields;
  for (uint64_t f = 0; f < count; ++f) {
    need(4, "a field name length");
    uint64_t name_length = get_le(payload, at, 4);
    at += 4;
    if (name_length == 0 || name_length > kMaxFieldName)
      throw WireError("field name length out of range");
    need(name_length, "a field name");
    std::string name(payload.substr(at, name_length));
    at += name_length;
    for (char c : name)
      if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_'))
        throw WireError("field name with a bad character");
    need(8, "a field length");
    uint64_t value_length = get_le(payload, at, 8);
    at += 8;
    need(value_length, "a field value");
    // Canonical order (as encode_fields writes them): sorted, each name once.
    if (!fields.empty() && !(fields.rbegin()->first < name))
      throw WireError("fields out of order, or a field appears twice");
    fields.emplace_hint(fields.end(), std::move(name),
                        std::string(payload.substr(at, value_length)));
    at += value_length;
  }
  if (at != payload.size()) throw WireError("bytes after the last field");
  return fields;
}

Frame decode_frame(std::string_view bytes) {
  if (bytes.size() < kFrameHeaderSize) throw WireError("short frame header");
  MessageType type;
  uint32_t length = decode_frame_header(bytes.substr(0, kFrameHeaderSize), &type);
  if (bytes.size() - kFrameHeaderSize != length)
    throw WireError("frame length does not match its payload");
  return Frame{type, decode_fields(bytes.substr(kFrameHeaderSize))};
}

namespace {

// Whether `fd` is ready for `events` (always, without a deadline); false means poll again.
// Throws WireTimeout once the deadline has passed.
bool ready_by(int fd, short events, double deadline, const char* timeout_message) {
  if (deadline <= 0) return true;
  double left = deadline - monotonic_seconds();
  if (left <= 0) throw WireTimeout(timeout_message);
  pollfd p{fd, events, 0};
  return ::poll(&p, 1, static_cast<int>(std::ceil(left * 1000))) > 0;
}

// Reads exactly `size` bytes; false at EOF before the first byte when `eof_ok`.
bool read_exact(int fd, char* out, size_t size, double deadline, bool eof_ok) {
  size_t done = 0;
  while (done < size) {
    if (!ready_by(fd, POLLIN, deadline, "timed out waiting for the worker")) continue;
    ssize_t n = ::read(fd, out + done, size - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw WireError(fmt::format("read failed: {}", std::strerror(errno)));
    if (n == 0) {
      if (done == 0 && eof_ok) return false;
      throw WireError("stream ended inside a frame");
    }
    done += static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

void write_frame(int fd, MessageType type, const Fields& fields, double deadline) {
  std::string frame = encode_frame(type, fields);
  for (size_t done = 0; done < frame.size();) {
    if (!ready_by(fd, POLLOUT, deadline, "timed out writing to the worker")) continue;
    // MSG_NOSIGNAL: a worker that died is an error here, not a SIGPIPE that kills the
    // host. MSG_DONTWAIT under a deadline: a stopped reader must not block us forever.
    ssize_t n = ::send(fd, frame.data() + done, frame.size() - done,
                       MSG_NOSIGNAL | (deadline > 0 ? MSG_DONTWAIT : 0));
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) throw WireError(fmt::format("write failed: {}", std::strerror(errno)));
    done += static_cast<size_t>(n);
  }
}

std::optional<Frame> read_frame(int fd, double deadline) {
  char header[kFrameHeaderSize];
  if (!read_exact(fd, header, sizeof header, deadline, true)) return std::nullopt;
  MessageType type;
  uint32_t length = decode_frame_header(std::string_view(header, sizeof header), &type);
  std::string payload(length, '\0');
  read_exact(fd, payload.data(), length, deadline, false);
  return Frame{type, decode_fields(payload)};
}

}  // namespace kiln
