// The golden models (an MLP, a transformer layer, a CNN), rebuilt with kiln's API from PyTorch's
// state_dict, eagerly and compiled, against PyTorch's outputs.
#include <gtest/gtest.h>

#include <cmath>

#include "support/compare.h"
#include "support/modes.h"

namespace kiln::testing {
namespace {

Tensor mlp(const TensorMap& w, const Tensor& x) {
  Tensor h = relu(linear(x, w.at("w.0.weight"), w.at("w.0.bias")));
  h = relu(linear(h, w.at("w.2.weight"), w.at("w.2.bias")));
  return linear(h, w.at("w.4.weight"), w.at("w.4.bias"));
}

// nn.TransformerEncoderLayer(d_model=64, nhead=4, dim_feedforward=128, batch_first=True,
// activation=relu), post-norm, eval mode.
Tensor transformer_layer(const TensorMap& w, const Tensor& x) {
  const int64_t heads = 4, d = x.size(-1), dh = d / heads, b = x.size(0), t = x.size(1);
  Tensor qkv = linear(x, w.at("w.self_attn.in_proj_weight"), w.at("w.self_attn.in_proj_bias"));
  auto head_view = [&](int64_t i) {
    return qkv.narrow(-1, i * d, d).reshape({b, t, heads, dh}).transpose(1, 2);
  };
  Tensor q = head_view(0), k = head_view(1), v = head_view(2);
  Tensor scores = matmul(q, k.transpose(-2, -1)) / std::sqrt(static_cast<double>(dh));
  Tensor attn = matmul(softmax(scores, -1), v).transpose(1, 2).reshape({b, t, d});
  Tensor sa = linear(attn, w.at("w.self_attn.out_proj.weight"), w.at("w.self_attn.out_proj.bias"));
  Tensor h = layer_norm(x + sa, {d}, w.at("w.norm1.weight"), w.at("w.norm1.bias"), 1e-5);
  Tensor ff = linear(relu(linear(h, w.at("w.linear1.weight"), w.at("w.linear1.bias"))),
                     w.at("w.linear2.weight"), w.at("w.linear2.bias"));
  return layer_norm(h + ff, {d}, w.at("w.norm2.weight"), w.at("w.norm2.bias"), 1e-5);
}

// tests/data/make_model_goldens.py's Cnn: conv, relu, max pool, a grouped strided conv, relu,
// average pool, linear.
Tensor cnn(const TensorMap& w, const Tensor& x) {
  Tensor h =
      max_pool2d(relu(conv2d(x, w.at("w.conv1.weight"), w.at("w.conv1.bias"), {1}, {1})), {2});
  h = avg_pool2d(relu(conv2d(h, w.at("w.conv2.weight"), w.at("w.conv2.bias"), {2}, {1}, {1}, 2)),
                 {2});
  return linear(h.flatten(1), w.at("w.fc.weight"), w.at("w.fc.bias"));
}

template <class Model>
void check_model(const char* file, Model model, const ModeConfig& config) {
  ModeRun run(config);
  TensorMap w = on_test_device(load_safetensors(data_path(file)));
  const Tensor& x = w.at("input");
  const Tensor& expected = w.at("output");
  EXPECT_EQ(compare_tensors(model(w, x), expected, 1e-4, 1e-4), "") << "eager " << file;
  auto f = compile([&](Tensor in) { return model(w, in); }, config.options("model"));
  EXPECT_EQ(compare_tensors(f(x), expected, 1e-4, 1e-4), "") << "compiled " << file;
  EXPECT_EQ(compare_tensors(f(x), expected, 1e-4, 1e-4), "") << "compiled again " << file;
  // The weights are graph inputs bound to the captured tensors.
  EXPECT_NE(f.graphs().at(0).find("%captured0"), std::string::npos);
}

// In every mode, weights captured by reference.
class Models : public ::testing::TestWithParam<ModeConfig> {};

TEST_P(Models, MlpMatchesPyTorch) {
  KILN_SKIP_WITHOUT_TEST_DEVICE();
  check_model("model_mlp.safetensors", mlp, GetParam());
}

TEST_P(Models, TransformerLayerMatchesPyTorch) {
  KILN_SKIP_WITHOUT_TEST_DEVICE();
  check_model("model_transformer_post_relu.safetensors", transformer_layer, GetParam());
}

TEST_P(Models, CnnMatchesPyTorch) {
  KILN_SKIP_WITHOUT_TEST_DEVICE();
  check_model("model_cnn.safetensors", cnn, GetParam());
}

INSTANTIATE_TEST_SUITE_P(Modes, Models, ::testing::ValuesIn(all_mode_configs()), mode_config_name);

}  // namespace
}  // namespace kiln::testing
