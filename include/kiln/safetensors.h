// The safetensors format (https://huggingface.co/docs/safetensors): reading validates the
// whole header before touching data (sizes, offsets in bounds, no overlaps or holes, dtype
// and shape consistent, bounded header size) and raises FormatError naming the file and the
// problem; it never executes or trusts anything in the file.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "kiln/tensor.h"

namespace kiln {

using TensorMap = std::map<std::string, Tensor>;

TensorMap load_safetensors(const std::string& path);
// Parses an in-memory safetensors image; `source` names it in errors.
TensorMap parse_safetensors(const uint8_t* data, size_t size, const std::string& source);
// Writes atomically (temp file + rename).
void save_safetensors(const std::string& path, const TensorMap& tensors,
                      const std::map<std::string, std::string>& metadata = {});
std::string serialize_safetensors(const TensorMap& tensors,
                                  const std::map<std::string, std::string>& metadata = {});

}  // namespace kiln
