// safetensors: round trips of every dtype, atomic writes, and files that are truncated or
// lie about their contents, each rejected with a FormatError naming the problem.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <string>

#include "kiln/kiln.h"
#include "support/compare.h"

namespace kiln {
namespace {

std::string image(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + header + data;
}

std::string error_of(const std::string& bytes) {
  try {
    parse_safetensors(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(),
                      "t.safetensors");
  } catch (const FormatError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(Safetensors, RoundTripsEveryDtype) {
  TensorMap m;
  for (DType d : {DType::f32, DType::f64, DType::f16, DType::bf16, DType::i32, DType::i64})
    m[std::string(dtype_name(d))] = (randn({3, 5}) * 10).to(d);
  m["bool"] = rand({7}) > 0.5;
  m["empty"] = zeros({0, 3});
  m["scalar"] = full({}, 2.5);
  m["strided"] = randn({4, 6}).t();
  std::string path = ::testing::TempDir() + "/kiln_rt.safetensors";
  save_safetensors(path, m, {{"format", "pt"}});
  TensorMap back = load_safetensors(path);
  ASSERT_EQ(back.size(), m.size());
  for (const auto& [name, t] : m)
    EXPECT_EQ(testing::compare_tensors(back.at(name), t, 0, 0), "") << name;
  for (const auto& entry : std::filesystem::directory_iterator(::testing::TempDir()))
    EXPECT_EQ(entry.path().string().find("kiln_rt.safetensors.tmp"), std::string::npos);
}

TEST(Safetensors, ReadsPyTorchFiles) {
  TensorMap m = load_safetensors(testing::data_path("model_mlp.safetensors"));
  EXPECT_EQ(m.at("w.0.weight").sizes(), (Shape{64, 32}));
  EXPECT_EQ(m.at("input").dtype(), DType::f32);
}

TEST(Safetensors, RejectsTruncatedAndLyingFiles) {
  const std::string ok_header = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  EXPECT_EQ(error_of(image(ok_header, std::string(8, '\1'))), "(no error)");
  EXPECT_EQ(error_of("abc"),
            "t.safetensors: not a valid safetensors file: 3 bytes is shorter than the 8-byte "
            "header length");
  EXPECT_EQ(error_of(image(ok_header, std::string(8, '\1')).substr(0, 20)),
            "t.safetensors: not a valid safetensors file: header length 54 runs past the end of "
            "the 20-byte file");
  std::string huge(8, '\xff');
  EXPECT_EQ(error_of(huge + "{}"),
            "t.safetensors: not a valid safetensors file: header length 18446744073709551615 "
            "exceeds the 104857600-byte limit");
  EXPECT_EQ(error_of(image(ok_header, std::string(4, '\1'))),
            "t.safetensors: not a valid safetensors file: tensor 'a': data_offsets [0, 8] fall "
            "outside the 4-byte data region");
  EXPECT_EQ(error_of(image(ok_header, std::string(12, '\1'))),
            "t.safetensors: not a valid safetensors file: tensors cover 8 bytes of a 12-byte data "
            "region");
  EXPECT_EQ(error_of(image(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})",
                           std::string(8, '\1'))),
            "t.safetensors: not a valid safetensors file: tensor 'a': shape [3] of F32 needs 12 "
            "bytes but data_offsets span 8");
  EXPECT_EQ(
      error_of(image(
          R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[2,6]}})",
          std::string(6, '\1'))),
      "t.safetensors: not a valid safetensors file: tensor 'b' starts at byte 2, expected 4 "
      "(overlap or hole)");
  EXPECT_EQ(error_of(image(R"({"a":{"dtype":"C64","shape":[1],"data_offsets":[0,8]}})",
                           std::string(8, '\1'))),
            "t.safetensors: not a valid safetensors file: tensor 'a': unsupported dtype 'C64' "
            "(kiln reads F32, F64, F16, BF16, I32, I64, BOOL)");
  EXPECT_EQ(error_of(image(R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,8]}})", "")),
            "t.safetensors: not a valid safetensors file: tensor 'a': shape entries must be "
            "non-negative integers");
  EXPECT_EQ(
      error_of(image(
          R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}})", "")),
      "t.safetensors: not a valid safetensors file: tensor 'a': a dim is larger than the data "
      "region");
  EXPECT_EQ(error_of(image(R"({"a":[[[[[[[[1]]]]]]]]})", "")),
            "t.safetensors: not a valid safetensors file: header JSON nests deeper than 4 levels");
  EXPECT_EQ(error_of(image(R"({"a":)", "")).substr(0, 71),
            "t.safetensors: not a valid safetensors file: header is not valid JSON (");
  EXPECT_EQ(error_of(image(R"({"a":{"dtype":"BOOL","shape":[1],"data_offsets":[0,1]}})", "\x02")),
            "t.safetensors: not a valid safetensors file: tensor 'a' holds a bool byte 2");
  EXPECT_EQ(error_of(image(R"({"__metadata__":{"k":1}})", "")),
            "t.safetensors: not a valid safetensors file: __metadata__ value 'k' is not a string");
  EXPECT_THROW(load_safetensors("/nonexistent/x.safetensors"), FormatError);
}

}  // namespace
}  // namespace kiln
