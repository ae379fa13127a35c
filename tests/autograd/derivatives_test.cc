// The derivative table (src/autograd/derivatives.cc), op by op: every op of ops.def has a
// derivative or is listed as having none; each case's gradients equal PyTorch's
// (tests/data/golden_grads.safetensors, from make_grad_goldens.py, the same cases in Python)
// and central finite differences in f64.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <map>

#include "autograd/derivatives.h"
#include "support/compare.h"
#include "support/modes.h"

namespace kiln::testing {
namespace {

using Inputs = std::vector<Tensor>;
using CaseFn = std::function<Tensor(const Inputs&)>;

Tensor f64_range(int64_t n) { return arange(n).to(DType::f64); }

// The cases of make_grad_goldens.py, with kiln's API.
const std::map<std::string, CaseFn>& cases() {
  static const std::map<std::string, CaseFn> all = {
      {"neg", [](const Inputs& a) { return -a[0]; }},
      {"abs", [](const Inputs& a) { return abs(a[0]); }},
      {"relu", [](const Inputs& a) { return relu(a[0]); }},
      {"floor", [](const Inputs& a) { return floor(a[0]); }},
      {"exp", [](const Inputs& a) { return exp(a[0]); }},
      {"log", [](const Inputs& a) { return log(a[0]); }},
      {"log1p", [](const Inputs& a) { return log1p(a[0]); }},
      {"sqrt", [](const Inputs& a) { return sqrt(a[0]); }},
      {"rsqrt", [](const Inputs& a) { return rsqrt(a[0]); }},
      {"sin", [](const Inputs& a) { return sin(a[0]); }},
      {"cos", [](const Inputs& a) { return cos(a[0]); }},
      {"tan", [](const Inputs& a) { return tan(a[0]); }},
      {"tanh", [](const Inputs& a) { return tanh(a[0]); }},
      {"sigmoid", [](const Inputs& a) { return sigmoid(a[0]); }},
      {"gelu", [](const Inputs& a) { return gelu(a[0]); }},
      {"gelu_tanh", [](const Inputs& a) { return gelu(a[0], "tanh"); }},
      {"erf", [](const Inputs& a) { return erf(a[0]); }},
      {"reciprocal", [](const Inputs& a) { return reciprocal(a[0]); }},
      {"add_broadcast", [](const Inputs& a) { return a[0] + a[1]; }},
      {"sub_broadcast", [](const Inputs& a) { return a[0] - a[1]; }},
      {"mul_broadcast", [](const Inputs& a) { return a[0] * a[1]; }},
      {"div", [](const Inputs& a) { return a[0] / a[1]; }},
      {"mul_scalar", [](const Inputs& a) { return a[0] * 2.5; }},
      {"rsub_scalar", [](const Inputs& a) { return 2.0 - a[0]; }},
      {"rdiv_scalar", [](const Inputs& a) { return 3.0 / a[0]; }},
      {"pow_scalar", [](const Inputs& a) { return a[0].pow(2.5); }},
      {"pow_tensor", [](const Inputs& a) { return pow(a[0], a[1]); }},
      {"rpow_scalar", [](const Inputs& a) { return pow(2.0, a[0]); }},
      {"maximum", [](const Inputs& a) { return maximum(a[0], a[1]); }},
      {"minimum", [](const Inputs& a) { return minimum(a[0], a[1]); }},
      {"maximum_ties", [](const Inputs& a) { return maximum(a[0], a[1]); }},
      {"fmod", [](const Inputs& a) { return fmod(a[0], a[1]); }},
      {"remainder", [](const Inputs& a) { return remainder(a[0], a[1]); }},
      {"atan2", [](const Inputs& a) { return atan2(a[0], a[1]); }},
      {"where", [](const Inputs& a) { return where(a[0] > 0.0, a[0], a[1]); }},
      {"clamp", [](const Inputs& a) { return clamp(a[0], -0.5, 0.5); }},
      {"to_f32", [](const Inputs& a) { return a[0].to(DType::f32).to(DType::f64) * 2; }},
      {"sum_dim", [](const Inputs& a) { return a[0].sum({1}); }},
      {"sum_all", [](const Inputs& a) { return a[0].sum(); }},
      {"sum_keepdim",
       [](const Inputs& a) {
         return a[0].sum({0, 2}, true);
       }},
      {"mean_dim", [](const Inputs& a) { return a[0].mean({0}); }},
      {"prod_dim", [](const Inputs& a) { return a[0].prod(1); }},
      {"amax_ties", [](const Inputs& a) { return a[0].amax({1}); }},
      {"amin_all", [](const Inputs& a) { return a[0].amin(); }},
      {"var_dim", [](const Inputs& a) { return a[0].var({1}); }},
      {"std_dim", [](const Inputs& a) { return a[0].std({0}); }},
      {"logsumexp", [](const Inputs& a) { return a[0].logsumexp({1}); }},
      {"softmax", [](const Inputs& a) { return a[0].softmax(-1); }},
      {"log_softmax", [](const Inputs& a) { return a[0].log_softmax(0); }},
      {"layer_norm", [](const Inputs& a) { return layer_norm(a[0], {4}, a[1], a[2], 1e-5); }},
      {"layer_norm_plain",
       [](const Inputs& a) {
         return layer_norm(a[0], {2, 4}, {}, {}, 1e-5);
       }},
      {"rms_norm", [](const Inputs& a) { return rms_norm(a[0], {8}, a[1], 1e-6); }},
      {"rms_norm_plain",
       [](const Inputs& a) {
         return rms_norm(a[0], {2, 4});
       }},
      {"conv2d",
       [](const Inputs& a) {
         return conv2d(a[0], a[1], a[2], {2, 1}, {1, 0}, {1, 2}, 2);
       }},
      {"conv2d_plain", [](const Inputs& a) { return conv2d(a[0], a[1]); }},
      {"conv2d_pointwise", [](const Inputs& a) { return conv2d(a[0], a[1], a[2]); }},
      {"conv2d_unbatched", [](const Inputs& a) { return conv2d(a[0], a[1], {}, {1}, {1}); }},
      {"conv1d", [](const Inputs& a) { return conv1d(a[0], a[1], a[2], {2}, {1}); }},
      {"conv3d",
       [](const Inputs& a) {
         return conv3d(a[0], a[1], {}, {1}, {1, 0, 1});
       }},
      {"conv_transpose2d",
       [](const Inputs& a) { return conv_transpose2d(a[0], a[1], a[2], {2}, {1}, {1}, 2); }},
      {"conv_transpose2d_dilated",
       [](const Inputs& a) { return conv_transpose2d(a[0], a[1], {}, {1}, {0}, {1}, 1, {2}); }},
      {"conv_transpose1d",
       [](const Inputs& a) { return conv_transpose1d(a[0], a[1], a[2], {3}, {2}, {1}); }},
      {"max_pool2d", [](const Inputs& a) { return max_pool2d(a[0], {3}, {2}, {1}); }},
      {"max_pool2d_ceil",
       [](const Inputs& a) {
         return max_pool2d(a[0], {2, 3}, {2}, {0}, {1, 2}, true);
       }},
      {"max_pool2d_with_indices",
       [](const Inputs& a) {
         auto [values, indices] = max_pool2d_with_indices(a[0], {3}, {2}, {1});
         return values + indices.to(DType::f64) * 1e-3;
       }},
      {"max_pool1d", [](const Inputs& a) { return max_pool1d(a[0], {3}, {2}); }},
      {"avg_pool2d", [](const Inputs& a) { return avg_pool2d(a[0], {3}, {2}, {1}); }},
      {"avg_pool2d_ceil_exclude",
       [](const Inputs& a) {
         return avg_pool2d(a[0], {3, 2}, {2, 3}, {1}, true, false);
       }},
      {"avg_pool2d_ceil_include",
       [](const Inputs& a) {
         return avg_pool2d(a[0], {3, 2}, {2, 3}, {1}, true);
       }},
      {"avg_pool2d_divisor",
       [](const Inputs& a) { return avg_pool2d(a[0], {2}, {1}, {0}, false, true, 5); }},
      {"avg_pool1d", [](const Inputs& a) { return avg_pool1d(a[0], {4}, {3}, {2}, true); }},
      {"unfold",
       [](const Inputs& a) {
         return unfold(a[0], {2, 3}, {2, 1}, {1}, {1, 2});
       }},
      {"fold",
       [](const Inputs& a) {
         return fold(a[0], {5, 6}, {2});
       }},
      {"batch_norm_train",
       [](const Inputs& a) { return batch_norm(a[0], {}, {}, a[1], a[2], true); }},
      {"batch_norm_eval", [](const Inputs& a) { return batch_norm(a[0], a[1], a[2], a[3], a[4]); }},
      {"instance_norm", [](const Inputs& a) { return instance_norm(a[0], {}, {}, a[1], a[2]); }},
      {"group_norm", [](const Inputs& a) { return group_norm(a[0], 3, a[1], a[2]); }},
      {"pad_constant",
       [](const Inputs& a) {
         return pad(a[0], {1, 2, 0, 1}, "constant", 0.5);
       }},
      {"pad_constant_negative",
       [](const Inputs& a) {
         return pad(a[0], {-1, 2, 1, -1});
       }},
      {"pad_reflect",
       [](const Inputs& a) {
         return pad(a[0], {2, 1, 3, 1}, "reflect");
       }},
      {"pad_replicate",
       [](const Inputs& a) {
         return pad(a[0], {1, 2, 2, 0}, "replicate");
       }},
      {"pad_circular",
       [](const Inputs& a) {
         return pad(a[0], {2, 1, 3, 0}, "circular");
       }},
      {"flip",
       [](const Inputs& a) {
         return flip(a[0], {0, 2});
       }},
      {"roll",
       [](const Inputs& a) {
         return roll(a[0], {1, -2}, {0, 1});
       }},
      {"roll_flat", [](const Inputs& a) { return roll(a[0], {4}); }},
      {"tril", [](const Inputs& a) { return tril(a[0], 1); }},
      {"triu", [](const Inputs& a) { return triu(a[0], -1); }},
      {"local_response_norm",
       [](const Inputs& a) { return local_response_norm(a[0], 4, 0.1, 0.7, 1.5); }},
      {"matmul", [](const Inputs& a) { return matmul(a[0], a[1]); }},
      {"matmul_batched", [](const Inputs& a) { return matmul(a[0], a[1]); }},
      {"matmul_vector_matrix", [](const Inputs& a) { return matmul(a[0], a[1]); }},
      {"matmul_matrix_vector", [](const Inputs& a) { return matmul(a[0], a[1]); }},
      {"matmul_dot", [](const Inputs& a) { return matmul(a[0], a[1]); }},
      {"bmm", [](const Inputs& a) { return bmm(a[0], a[1]); }},
      {"linear", [](const Inputs& a) { return linear(a[0], a[1], a[2]); }},
      {"linear_no_bias", [](const Inputs& a) { return linear(a[0], a[1]); }},
      {"attention", [](const Inputs& a) { return scaled_dot_product_attention(a[0], a[1], a[2]); }},
      {"cat", [](const Inputs& a) { return cat({a[0], a[1]}, 1); }},
      {"stack", [](const Inputs& a) { return stack({a[0], a[1]}, 1); }},
      {"index_select", [](const Inputs& a) { return index_select(a[0], 1, a[1]); }},
      {"gather", [](const Inputs& a) { return gather(a[0], 1, a[1]); }},
      {"gather_one_pick", [](const Inputs& a) { return gather(a[0], 1, a[1]); }},
      {"embedding", [](const Inputs& a) { return embedding(a[0], a[1]); }},
      {"index_put", [](const Inputs& a) { return index_put(a[0], {a[1]}, a[2]); }},
      {"index_put_accumulate", [](const Inputs& a) { return index_put(a[0], {a[1]}, a[2], true); }},
      {"adaptive_avg_pool2d", [](const Inputs& a) { return adaptive_avg_pool2d(a[0], {3, 4}); }},
      {"reshape",
       [](const Inputs& a) { return a[0].reshape({2, 6}) * f64_range(6).to(a[0].device()); }},
      {"permute", [](const Inputs& a) { return a[0].permute({2, 0, 1}).contiguous(); }},
      {"narrow", [](const Inputs& a) { return a[0].narrow(0, 1, 3); }},
      {"strided_slice", [](const Inputs& a) { return a[0].slice(1, 1, std::nullopt, 2); }},
      {"expand",
       [](const Inputs& a) { return a[0].expand({3, 4}) * f64_range(4).to(a[0].device()); }},
      {"transpose_clone", [](const Inputs& a) { return a[0].t().clone(); }},
      {"mse", [](const Inputs& a) { return (a[0] - a[1]).pow(2.0).mean(); }},
  };
  return all;
}

// Cases where finite differences do not define the gradient PyTorch chose: ties (the
// function has a kink there) and a round trip through f32 (differences of rounding).
bool smooth(const std::string& name) {
  return name != "maximum_ties" && name != "amax_ties" && name != "amin_all" && name != "to_f32";
}

const TensorMap& golden() {
  static const TensorMap g = load_safetensors(data_path("golden_grads.safetensors"));
  return g;
}

Inputs case_inputs(const std::string& name) {
  Inputs in;
  for (int i = 0;; ++i) {
    auto it = golden().find(fmt::format("{}.in{}", name, i));
    if (it == golden().end()) break;
    in.push_back(it->second.clone());
  }
  return in;
}

TEST(Derivatives, EveryOpHasOneOrIsListedWithout) {
  for (int i = 0; i < kNumOps; ++i) {
    Op op = static_cast<Op>(i);
    EXPECT_NE(derivative_of(op) != nullptr, non_differentiable(op)) << op_name(op);
  }
}

TEST(Derivatives, EveryGoldenCaseRuns) {
  size_t golden_cases = 0;
  for (const auto& [key, value] : golden())
    if (key.ends_with(".gout")) ++golden_cases;
  EXPECT_EQ(golden_cases, cases().size()) << "make_grad_goldens.py and this file list the same";
}

class GoldenGrad : public ::testing::TestWithParam<std::string> {};

// On the suite's device (the GPU in cuda_derivatives_test).
TEST_P(GoldenGrad, MatchesPyTorch) {
  KILN_SKIP_WITHOUT_TEST_DEVICE();
  const std::string& name = GetParam();
  Inputs in = on_test_device(case_inputs(name));
  ASSERT_FALSE(in.empty()) << name << " is not in golden_grads.safetensors";
  for (const Tensor& t : in)
    if (is_floating(t.dtype())) t.requires_grad_();
  Tensor out = cases().at(name)(in);
  ASSERT_TRUE(out.requires_grad()) << name;
  const Tensor value = out.detach().clone();
  out.backward(golden().at(name + ".gout").to(test_device()));
  for (size_t i = 0; i < in.size(); ++i) {
    auto it = golden().find(fmt::format("{}.grad{}", name, i));
    if (it == golden().end()) continue;
    ASSERT_TRUE(in[i].grad().defined()) << name << " input " << i;
    EXPECT_EQ(in[i].grad().device(), test_device()) << name << " input " << i;
    EXPECT_EQ(compare_tensors(in[i].grad(), it->second, 1e-9, 1e-10), "") << name << " input " << i;
  }
  EXPECT_EQ(compare_tensors(value, golden().at(name + ".out"), 1e-9, 1e-10), "")
      << name << " value";
}

TEST_P(GoldenGrad, MatchesFiniteDifferences) {
  if (test_device() != Device::cpu) GTEST_SKIP() << "finite differences run on the CPU";
  const std::string& name = GetParam();
  if (!smooth(name)) GTEST_SKIP() << "not differentiable at its inputs";
  Inputs in = case_inputs(name);
  Tensor gout = golden().at(name + ".gout");
  const CaseFn& fn = cases().at(name);
  auto objective = [&](const Inputs& xs) { return (fn(xs) * gout).sum().item<double>(); };
  Inputs traced = in;
  std::vector<Tensor> wrt;
  for (Tensor& t : traced)
    if (is_floating(t.dtype())) wrt.push_back(t.requires_grad_());
  std::vector<Tensor> analytic = kiln::grad({(fn(traced) * gout).sum()}, wrt);
  size_t k = 0;
  for (size_t i = 0; i < in.size(); ++i) {
    if (!is_floating(in[i].dtype())) continue;
    Tensor numeric = zeros(in[i].sizes(), DType::f64);
    double* n = numeric.data<double>();
    for (int64_t e = 0; e < in[i].numel(); ++e) {
      const double h = 1e-6;
      Inputs plus = in, minus = in;
      plus[i] = in[i].clone();
      minus[i] = in[i].clone();
      plus[i].data<double>()[e] += h;
      minus[i].data<double>()[e] -= h;
      n[e] = (objective(plus) - objective(minus)) / (2 * h);
    }
    EXPECT_EQ(compare_tensors(analytic[k++], numeric, 1e-5, 1e-6), "") << name << " input " << i;
  }
}

std::vector<std::string> case_names() {
  std::vector<std::string> names;
  for (const auto& [name, fn] : cases()) names.push_back(name);
  return names;
}

INSTANTIATE_TEST_SUITE_P(Cases, GoldenGrad, ::testing::ValuesIn(case_names()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

}  // namespace
}  // namespace kiln::testing
