// The wire: frames round-trip, and every malformed frame is a WireError, never a crash or
// an over-read (the fuzzer, tests/fuzz/frame_fuzz.cc, covers the rest).
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include "wire/frame.h"

namespace kiln {
namespace {

TEST(Wire, FramesRoundTripThroughASocket) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  std::string binary("\0\1\2\xff", 4);
  write_frame(sv[0], MessageType::compile_unit, {{"name", "k"}, {"source", binary}, {"empty", ""}});
  write_frame(sv[0], MessageType::shutdown, {});
  ::close(sv[0]);
  std::optional<Frame> a = read_frame(sv[1], monotonic_seconds() + 5);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->type, MessageType::compile_unit);
  EXPECT_EQ(a->at("source"), binary);
  EXPECT_EQ(a->at("empty"), "");
  EXPECT_THROW(a->at("missing"), WireError);
  std::optional<Frame> b = read_frame(sv[1]);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->type, MessageType::shutdown);
  EXPECT_FALSE(read_frame(sv[1]));  // a clean end of stream
  ::close(sv[1]);
}

TEST(Wire, ADeadlineThatPassesIsATimeout) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  EXPECT_THROW(read_frame(sv[1], monotonic_seconds() + 0.05), WireTimeout);
  ::close(sv[0]);
  ::close(sv[1]);
}

TEST(Wire, WritingToAClosedPeerIsAnErrorNotASignal) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  ::close(sv[1]);
  EXPECT_THROW(write_frame(sv[0], MessageType::shutdown, {}), WireError);
  ::close(sv[0]);
}

std::string corrupt(std::string frame, size_t at, char value) {
  frame[at] = value;
  return frame;
}

TEST(Wire, MalformedFramesAreRejected) {
  const std::string good = encode_frame(MessageType::reply, {{"job", "1"}, {"status", "ok"}});
  EXPECT_EQ(decode_frame(good).at("status"), "ok");
  struct Bad {
    std::string bytes;
    const char* why;
  };
  std::vector<Bad> bad = {
      {good.substr(0, 10), "short frame header"},
      {corrupt(good, 0, 'X'), "bad frame magic"},
      {corrupt(good, 4, 9), "wire protocol version 9"},
      {corrupt(good, 6, 99), "unknown message type 99"},
      {corrupt(good, 12, 1), "reserved header bytes"},
      {good.substr(0, good.size() - 1), "frame length does not match"},
      {good + "x", "frame length does not match"},
      {corrupt(good, 11, 0x7f), "over the limit"},
  };
  // A payload that claims a field longer than itself.
  std::string lying = good;
  lying[16 + 4 + 4 + 3] = 0x7f;  // the first field's value length (after "job")
  bad.push_back({lying, "truncated"});
  std::string duplicate = encode_frame(MessageType::reply, {{"a", "1"}});
  std::string payload = duplicate.substr(16);
  std::string twice = payload.substr(4);
  std::string doubled = std::string("\2\0\0\0", 4) + twice + twice;
  std::string header = duplicate.substr(0, 8);
  uint32_t n = static_cast<uint32_t>(doubled.size());
  header += std::string(reinterpret_cast<const char*>(&n), 4) + std::string(4, '\0');
  bad.push_back({header + doubled, "appears twice"});
  for (const Bad& b : bad) {
    try {
      decode_frame(b.bytes);
      ADD_FAILURE() << "accepted: " << b.why;
    } catch (const WireError& e) {
      EXPECT_NE(std::string(e.what()).find(b.why), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace kiln
