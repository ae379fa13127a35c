// The wire between kiln and its worker processes (docs/design.md §5): length-prefixed frames, each
// a 16-byte header (magic "KILW", protocol version, message type, payload length) and a
// payload of named fields. Nothing read from a pipe is trusted: headers and field tables
// are validated before use, and payloads are only data (graph text, safetensors, object
// bytes, JSON), never a format that runs code on load.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "kiln/error.h"

#include "support/spans.h"  // monotonic_seconds: deadlines are on its clock

namespace kiln {

enum class MessageType : uint16_t {
  hello = 1,          // worker → host, once: pid, build identity
  compile_graph = 2,  // host → worker: graph text, constants → plan, kernel sources
  compile_unit = 3,   // host → worker: one translation unit's source → its object
  reply = 4,          // worker → host: the job's result or its error
  shutdown = 5,       // host → worker: exit now
  fork_worker = 6,    // host → fork server: fork a worker on the descriptors sent along
  forked = 7,         // fork server → host: the worker's pid
  worker_exit = 8,    // fork server → host: a forked worker's exit status
  benchmark = 9,      // host → benchmark worker: an object's kernels to time on real sizes
};
const char* message_type_name(MessageType type);

constexpr uint16_t kWireVersion = 1;
constexpr size_t kFrameHeaderSize = 16;
constexpr uint32_t kMaxFramePayload = 1u << 30;  // 1 GiB: constants travel in frames

using Fields = std::map<std::string, std::string, std::less<>>;

struct Frame {
  MessageType type = MessageType::reply;
  Fields fields;
  // A field that must be present; throws WireError naming the message and field.
  const std::string& at(std::string_view name) const;
};

// Raised for any malformed input from the wire; WireTimeout when a deadline passed.
struct WireError : Error {
  using Error::Error;
};
struct WireTimeout : WireError {
  using WireError::WireError;
};

std::string encode_frame(MessageType type, const Fields& fields);
// A payload alone (also the format of graph cache entries).
std::string encode_fields(const Fields& fields);

// Validates a frame header; returns the payload length to read next.
uint32_t decode_frame_header(std::string_view header, MessageType* type);
// Validates and splits a payload into its fields (in canonical order: sorted by name, each
// once, so that a payload has one encoding).
Fields decode_fields(std::string_view payload);
// Both, over a whole frame (header + payload), as the fuzzer drives them.
Frame decode_frame(std::string_view bytes);

// Blocking I/O on a stream socket (channels are socketpairs, so that a write to a dead
// peer is an error instead of a SIGPIPE). read_frame returns nullopt at a clean end of stream
// (EOF before any header byte); a deadline (CLOCK_MONOTONIC seconds, 0 = none) that passes
// raises WireTimeout, for writes too (a reader that stopped reading). Both raise WireError for
// malformed or truncated frames.
void write_frame(int fd, MessageType type, const Fields& fields, double deadline = 0);
std::optional<Frame> read_frame(int fd, double deadline = 0);

}  // namespace kiln
