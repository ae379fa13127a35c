// safetensors reading and writing. The reader trusts nothing: the header length, the JSON
// (bounded size and nesting), every entry's dtype, shape and offsets are validated, and the
// data region must be covered exactly, with no overlaps and no holes, before any tensor is
// built.
#include "kiln/safetensors.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>

#include "graph/dim.h"
#include "kiln/error.h"
#include "support/files.h"
#include "tensor/tensor_impl.h"

namespace kiln {

namespace {

constexpr uint64_t kMaxHeaderBytes = 100u << 20;
constexpr int64_t kMaxFileBytes = int64_t{1} << 40;  // 1 TiB: read whole, so the host holds it
constexpr int kMaxJsonDepth = 4;
constexpr size_t kMaxEntries = size_t{1} << 20;  // tensors in one file
constexpr int64_t kMaxRank = 16;

constexpr std::pair<const char*, DType> kDTypes[] = {
    {"F32", DType::f32}, {"F64", DType::f64}, {"F16", DType::f16},    {"BF16", DType::bf16},
    {"I32", DType::i32}, {"I64", DType::i64}, {"BOOL", DType::bool_},
};

const char* safetensors_dtype(DType d) {
  for (const auto& [name, dtype] : kDTypes)
    if (dtype == d) return name;
  return "?";
}

[[noreturn]] void bad(const std::string& source, const std::string& message) {
  throw FormatError(fmt::format("{}: not a valid safetensors file: {}", source, message));
}

// The deepest nesting of [ and { in JSON text (outside strings), in one pass.
int json_depth(const char* text, size_t size) {
  int depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (size_t i = 0; i < size; ++i) {
    const char c = text[i];
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      deepest = std::max(deepest, ++depth);
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  return deepest;
}

uint64_t read_u64_le(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

struct Entry {
  std::string name;
  DType dtype;
  Shape shape;
  uint64_t begin, end;
};

Entry parse_entry(const std::string& source, const std::string& name, const nlohmann::json& info,
                  uint64_t data_size) {
  auto where = [&](const std::string& what) { return fmt::format("tensor '{}': {}", name, what); };
  if (!info.is_object()) bad(source, where("entry is not an object"));
  for (const auto& [key, value] : info.items())
    if (key != "dtype" && key != "shape" && key != "data_offsets")
      bad(source, where(fmt::format("unknown field '{}'", key)));
  if (!info.contains("dtype") || !info["dtype"].is_string())
    bad(source, where("missing or non-string dtype"));
  Entry e{name, DType::f32, {}, 0, 0};
  std::string dtype = info["dtype"].get<std::string>();
  bool known = false;
  for (const auto& [n, d] : kDTypes)
    if (dtype == n) {
      e.dtype = d;
      known = true;
    }
  if (!known)
    bad(source, where(fmt::format("unsupported dtype '{}' (kiln reads F32, F64, F16, BF16, I32, "
                                  "I64, BOOL)",
                                  dtype)));
  if (!info.contains("shape") || !info["shape"].is_array())
    bad(source, where("missing or non-array shape"));
  if (static_cast<int64_t>(info["shape"].size()) > kMaxRank)
    bad(source, where(fmt::format("more than {} dims", kMaxRank)));
  uint64_t numel = 1;
  for (const auto& d : info["shape"]) {
    if (!d.is_number_unsigned()) bad(source, where("shape entries must be non-negative integers"));
    uint64_t size = d.get<uint64_t>();
    if (size > data_size && size != 0 && numel != 0)
      bad(source, where("a dim is larger than the data region"));
    if (size != 0 && numel > std::numeric_limits<uint64_t>::max() / size)
      bad(source, where("element count overflows"));
    numel *= size;
    e.shape.push_back(static_cast<int64_t>(size));
  }
  const auto& offsets = info.contains("data_offsets") ? info["data_offsets"] : nlohmann::json();
  if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() ||
      !offsets[1].is_number_unsigned())
    bad(source, where("data_offsets must be [begin, end] non-negative integers"));
  e.begin = offsets[0].get<uint64_t>();
  e.end = offsets[1].get<uint64_t>();
  if (e.begin > e.end || e.end > data_size)
    bad(source, where(fmt::format("data_offsets [{}, {}] fall outside the {}-byte data region",
                                  e.begin, e.end, data_size)));
  uint64_t esize = static_cast<uint64_t>(dtype_size(e.dtype));
  if (numel > data_size / esize + 1 || e.end - e.begin != numel * esize)
    bad(source, where(fmt::format("shape {} of {} needs {} bytes but data_offsets span {}",
                                  shape_string(e.shape), dtype, numel * esize, e.end - e.begin)));
  return e;
}

}  // namespace

TensorMap parse_safetensors(const uint8_t* data, size_t size, const std::string& source) {
  if (size < 8) bad(source, fmt::format("{} bytes is shorter than the 8-byte header length", size));
  uint64_t header_len = read_u64_le(data);
  if (header_len > kMaxHeaderBytes)
    bad(source,
        fmt::format("header length {} exceeds the {}-byte limit", header_len, kMaxHeaderBytes));
  if (header_len > size - 8)
    bad(source,
        fmt::format("header length {} runs past the end of the {}-byte file", header_len, size));
  const char* header = reinterpret_cast<const char*>(data + 8);
  if (header_len < 2 || header[0] != '{') bad(source, "header is not a JSON object");
  // Nesting is checked by a linear scan first: nlohmann's callback parser (the other way to
  // bound it) rescans an object at the end of each member, quadratic in the entries.
  if (json_depth(header, header_len) > kMaxJsonDepth)
    bad(source, fmt::format("header JSON nests deeper than {} levels", kMaxJsonDepth));
  nlohmann::json json;
  try {
    json = nlohmann::json::parse(header, header + header_len);
  } catch (const nlohmann::json::exception& e) {
    bad(source, fmt::format("header is not valid JSON ({})", e.what()));
  }
  if (!json.is_object()) bad(source, "header is not a JSON object");
  if (json.size() > kMaxEntries)
    bad(source, fmt::format("{} header entries; kiln reads at most {}", json.size(), kMaxEntries));
  const uint64_t data_size = size - 8 - header_len;
  const uint8_t* region = data + 8 + header_len;
  std::vector<Entry> entries;
  for (const auto& [name, info] : json.items()) {
    if (name == "__metadata__") {
      if (!info.is_object()) bad(source, "__metadata__ must be an object");
      for (const auto& [k, v] : info.items())
        if (!v.is_string()) bad(source, fmt::format("__metadata__ value '{}' is not a string", k));
      continue;
    }
    entries.push_back(parse_entry(source, name, info, data_size));
  }
  std::vector<const Entry*> by_offset;
  for (const Entry& e : entries) by_offset.push_back(&e);
  std::sort(by_offset.begin(), by_offset.end(), [](const Entry* a, const Entry* b) {
    return a->begin < b->begin || (a->begin == b->begin && a->end < b->end);
  });
  uint64_t covered = 0;
  for (const Entry* e : by_offset) {
    if (e->begin != covered)
      bad(source, fmt::format("tensor '{}' starts at byte {}, expected {} (overlap or hole)",
                              e->name, e->begin, covered));
    covered = e->end;
  }
  if (covered != data_size)
    bad(source, fmt::format("tensors cover {} bytes of a {}-byte data region", covered, data_size));
  TensorMap out;
  for (const Entry& e : entries) {
    Tensor t = make_tensor(e.shape, e.dtype);
    if (e.end > e.begin) std::memcpy(t.impl()->data_ptr(), region + e.begin, e.end - e.begin);
    if (e.dtype == DType::bool_) {
      uint8_t* p = reinterpret_cast<uint8_t*>(t.impl()->data_ptr());
      for (uint64_t i = 0; i < e.end - e.begin; ++i)
        if (p[i] > 1) bad(source, fmt::format("tensor '{}' holds a bool byte {}", e.name, p[i]));
    }
    out.emplace(e.name, std::move(t));
  }
  return out;
}

TensorMap load_safetensors(const std::string& path) {
  std::string bytes;
  try {
    bytes = read_regular_file(path, kMaxFileBytes);
  } catch (const Error& e) {
    throw FormatError(e.what());
  }
  return parse_safetensors(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), path);
}

std::string serialize_safetensors(const TensorMap& tensors,
                                  const std::map<std::string, std::string>& metadata) {
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  std::vector<Tensor> ordered;
  for (const auto& [name, t] : tensors) {
    require_data(t, "save_safetensors");
    Tensor c = t.contiguous().cpu();
    uint64_t bytes = static_cast<uint64_t>(c.numel() * dtype_size(c.dtype()));
    header[name] = {{"dtype", safetensors_dtype(c.dtype())},
                    {"shape", c.sizes()},
                    {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
    ordered.push_back(c);
  }
  std::string text = header.dump();
  while ((text.size() + 8) % 8) text += ' ';  // data starts 8-byte aligned
  std::string out(8, '\0');
  uint64_t len = text.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((len >> (8 * i)) & 0xff);
  out += text;
  for (const Tensor& c : ordered)
    out.append(c.impl()->data_ptr(), static_cast<size_t>(c.numel() * dtype_size(c.dtype())));
  return out;
}

void save_safetensors(const std::string& path, const TensorMap& tensors,
                      const std::map<std::string, std::string>& metadata) {
  std::string bytes = serialize_safetensors(tensors, metadata);
  std::string tmp = fmt::format("{}.tmp.{}", path, getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw Error(fmt::format("{}: cannot write: {}", tmp, std::strerror(errno)));
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      throw Error(fmt::format("{}: write failed: {}", tmp, std::strerror(err)));
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0 || ::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    throw Error(fmt::format("{}: cannot finish writing: {}", path, std::strerror(err)));
  }
}

}  // namespace kiln
