// libFuzzer target: the safetensors reader. Any input either loads or raises FormatError;
// what loads must serialize and load back to the same tensors.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "kiln/error.h"
#include "kiln/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  kiln::TensorMap tensors;
  try {
    tensors = kiln::parse_safetensors(data, size, "fuzz");
  } catch (const kiln::FormatError&) {
    return 0;
  }
  std::string bytes = kiln::serialize_safetensors(tensors);
  kiln::TensorMap back =
      kiln::parse_safetensors(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "re");
  if (back.size() != tensors.size()) std::abort();
  for (const auto& [name, t] : tensors)
    if (back.at(name).sizes() != t.sizes() || back.at(name).dtype() != t.dtype()) std::abort();
  return 0;
}
