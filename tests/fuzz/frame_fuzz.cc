// libFuzzer target: the wire's frame decoder. Any input either decodes or raises
// WireError; what decodes must encode back to the same bytes.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "wire/frame.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  kiln::Frame frame;
  try {
    frame = kiln::decode_frame(bytes);
  } catch (const kiln::WireError&) {
    return 0;
  }
  if (kiln::encode_frame(frame.type, frame.fields) != bytes) std::abort();
  return 0;
}
