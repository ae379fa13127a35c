// In-place ops and mutation: eagerly against PyTorch's answers (tests/data/golden_inplace.*,
// made by make_inplace_goldens.py), and compiled in every mode against eager — results and
// side effects on the arguments and on captured tensors, views and aliasing included.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <functional>

#include "kiln/error.h"
#include "support/compare.h"
#include "support/modes.h"
#include "tensor/tensor_impl.h"

namespace kiln::testing {
namespace {

struct Args {
  Tensor x, y, r, m, i;
};
using Program = std::function<Tensor(Args&)>;

// The programs of make_inplace_goldens.py, in kiln's API.
const std::vector<std::pair<std::string, Program>>& programs() {
  static const std::vector<std::pair<std::string, Program>> list = {
      {"arith",
       [](Args& a) {
         a.x.add_(a.y, 2);
         a.x.sub_(0.5);
         a.x.mul_(a.r);
         a.x.div_(3.0);
         a.i.add_(3, 2);
         a.i.mul_(-2);
         return a.x;
       }},
      {"narrow_view",
       [](Args& a) {
         Tensor v = a.x.narrow(0, 1, 2);
         v.mul_(2);
         v.add_(1);
         return v * 1;
       }},
      {"transpose_view",
       [](Args& a) {
         a.x.t().add_(a.y.t());
         a.x.t().narrow(0, 1, 2).mul_(10);
         return a.x.sum({0});
       }},
      {"flat_view_copy",
       [](Args& a) {
         a.x.view({-1}).narrow(0, 3, 10).copy_(arange(10));
         return a.x + 0;
       }},
      {"fill_zero",
       [](Args& a) {
         a.x.narrow(1, 0, 2).fill_(7);
         a.x.narrow(0, 3, 1).zero_();
         a.i.narrow(1, 5, 1).fill_(-4);
         return a.x * a.y;
       }},
      {"clamp_masked",
       [](Args& a) {
         a.x.clamp_(-0.5, 0.5);
         a.x.masked_fill_(a.m, -9);
         return masked_fill(a.y, a.m, 3);
       }},
      {"copy_broadcast_cast",
       [](Args& a) {
         a.i.copy_(a.x * 10);
         a.x.copy_(a.r);
         return a.i * 1;
       }},
      {"operators",
       [](Args& a) {
         a.x += a.y;
         a.x *= 2;
         a.x -= 1;
         a.x /= a.y.abs() + 1;
         return a.x - a.y;
       }},
      {"overlapping_views",
       [](Args& a) {
         Tensor p = a.x.narrow(0, 0, 2), q = a.x.narrow(0, 1, 2);
         p.add_(1);
         q.mul_(a.y.narrow(0, 0, 2));
         return p + q;
       }},
      {"unsqueeze_view",
       [](Args& a) {
         a.x.unsqueeze(0).narrow(1, 2, 1).squeeze(0).mul_(-1);
         a.y.reshape({24}).narrow(0, 20, 4).sub_(100);
         return a.x.reshape({24}) * 1;
       }},
      {"chained",
       [](Args& a) {
         const Tensor& out = a.x.add_(1).mul_(a.y).clamp_(-1, 1);
         return out * 2;
       }},
      {"index_put",
       [](Args& a) {
         auto ints = [](std::vector<int64_t> v, Shape s) { return from_vector<int64_t>(v, s); };
         Device d = a.x.device();
         a.x.index_put_({ints({2, 0, -1}, {3}).to(d), ints({1, 5, 3}, {3}).to(d)},
                        scalar_tensor(-7.0, DType::f32, d));
         a.x.t().index_put_({ints({4}, {1}).to(d)}, scalar_tensor(9.0, DType::f32, d));
         a.y.index_put_({ints({1, 1, 3}, {3}).to(d)}, a.r * 2, /*accumulate=*/true);
         a.i.index_put_({ints({0, 3}, {2}).to(d), ints({2, 4}, {2, 1}).to(d)},
                        ints({5, 6}, {2}).to(d), /*accumulate=*/true);
         return index_put(a.x, {ints({3}, {1}).to(d)}, a.y.narrow(0, 0, 1));
       }},
      // Slices with steps: whole groups, a last element without its group, nested views.
      {"strided_slices",
       [](Args& a) {
         a.x.slice(1, 1, std::nullopt, 2).mul_(-3);
         a.y.slice(0, 0, 4, 3).add_(a.r);
         a.x.t().slice(0, std::nullopt, std::nullopt, 2).sub_(1);
         a.i.slice(0, 1, 3).slice(1, std::nullopt, std::nullopt, 4).fill_(11);
         a.y.slice(1, 2, 5, 2).slice(0, 1, 2).zero_();
         return a.x + a.y;
       }},
  };
  return list;
}

const TensorMap& goldens() {
  static const TensorMap map = load_safetensors(data_path("golden_inplace.safetensors"));
  return map;
}

Args fresh_args() {
  const TensorMap& g = goldens();
  return {g.at("in.x").clone().to(test_device()), g.at("in.y").clone().to(test_device()),
          g.at("in.r").clone().to(test_device()), g.at("in.m").clone().to(test_device()),
          g.at("in.i").clone().to(test_device())};
}

void expect_golden(const std::string& name, const Args& a, const Tensor& out,
                   const std::string& where) {
  const TensorMap& g = goldens();
  EXPECT_EQ(compare_tensors(out, g.at(name + ".out"), 1e-5, 1e-5), "") << where << " out";
  EXPECT_EQ(compare_tensors(a.x, g.at(name + ".x"), 1e-5, 1e-5), "") << where << " x";
  EXPECT_EQ(compare_tensors(a.y, g.at(name + ".y"), 1e-5, 1e-5), "") << where << " y";
  EXPECT_EQ(compare_tensors(a.r, g.at(name + ".r"), 0, 0), "") << where << " r";
  EXPECT_EQ(compare_tensors(a.i, g.at(name + ".i"), 0, 0), "") << where << " i";
}

TEST(Mutation, EagerInPlaceOpsMatchPyTorch) {
  KILN_SKIP_WITHOUT_TEST_DEVICE();
  for (const auto& [name, program] : programs()) {
    Args a = fresh_args();
    Tensor out = program(a);
    expect_golden(name, a, out, "eager " + name);
  }
}

TEST(Mutation, VersionCountsEveryWrite) {
  Tensor x = zeros({4});
  Tensor v = x.narrow(0, 1, 2);
  uint64_t before = x._version();
  v.add_(1);
  EXPECT_EQ(x._version(), before + 1) << "views share the counter";
  x.data<float>()[0] = 5;
  EXPECT_EQ(x._version(), before + 2) << "data<T>() counts as a write";
  (void)x.const_data<float>();
  (void)(x + 1);
  EXPECT_EQ(x._version(), before + 2) << "reads do not";
}

TEST(Mutation, BadInPlaceOpsAreErrors) {
  Tensor i = zeros({3}, DType::i64), x = randn({3});
  EXPECT_THROW(i.add_(1.5), Error);
  EXPECT_THROW(i.div_(2), Error);     // true division gives floats
  EXPECT_THROW(i.add_(x, 2), Error);  // float result into an integer tensor
  EXPECT_THROW(x.add_(x, 0.5).add_(randn({2, 3})), ShapeError);  // broadcast grows x
  EXPECT_THROW(randn({1}).expand({4}).add_(1), Error);           // overlapping elements
  EXPECT_THROW(masked_fill(x, x, 1), Error);                     // the mask must be bool
  Tensor at = from_vector<int64_t>({0, 2}, {2});
  EXPECT_THROW(x.index_put_({at}, randn({3})), ShapeError);              // [3] into picked [2]
  EXPECT_THROW(x.index_put_({at}, zeros({2}, DType::i64)), ShapeError);  // dtype differs
  EXPECT_THROW(x.index_put_({x > 0}, randn({1})), ShapeError);           // a mask is not an index
  EXPECT_THROW(x.index_put_({at, at}, randn({2})), ShapeError);          // two indices for one dim
  EXPECT_THROW(x.index_put_({}, randn({1})), ShapeError);
  Tensor before = x.clone();
  try {
    x.index_put_({from_vector<int64_t>({1, 3}, {2})}, randn({2}));
    ADD_FAILURE() << "an index past the end was accepted";
  } catch (const ShapeError& e) {
    EXPECT_NE(std::string(e.what()).find("index_put: index 3 is out of bounds for a dim of size 3"),
              std::string::npos)
        << e.what();
  }
  EXPECT_EQ(compare_tensors(x, before, 0, 0), "") << "a refused index_put_ writes nothing";
  try {
    i.add_(1.5);
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("add_"), std::string::npos) << e.what();
  }
}

// Compiled, in every mode: each program's result and its side effects equal eager's.
class CompiledMutation : public ::testing::TestWithParam<ModeConfig> {};

TEST_P(CompiledMutation, ArgumentsAreWrittenBackAsEagerly) {
  KILN_SKIP_WITHOUT_TEST_DEVICE();
  ModeRun run(GetParam());
  for (const auto& [name, program] : programs()) {
    Program p = program;
    auto f = compile(
        [p](Tensor x, Tensor y, Tensor r, Tensor m, Tensor i) {
          Args a{x, y, r, m, i};
          return p(a);
        },
        GetParam().options("mut_" + name));
    for (int call = 0; call < 2; ++call) {  // the second call starts from the first's writes
      Args eager = fresh_args(), compiled = fresh_args();
      if (call == 1) {
        (void)program(eager);
        (void)f(compiled.x, compiled.y, compiled.r, compiled.m, compiled.i);
      }
      Tensor want = program(eager);
      Tensor got = f(compiled.x, compiled.y, compiled.r, compiled.m, compiled.i);
      std::string where = fmt::format("{} call {} ({})", name, call, GetParam().name);
      EXPECT_EQ(compare_tensors(got, want, 1e-5, 1e-5), "") << where << " out";
      EXPECT_EQ(compare_tensors(compiled.x, eager.x, 1e-5, 1e-5), "") << where << " x";
      EXPECT_EQ(compare_tensors(compiled.y, eager.y, 1e-5, 1e-5), "") << where << " y";
      EXPECT_EQ(compare_tensors(compiled.i, eager.i, 0, 0), "") << where << " i";
      if (call == 0) expect_golden(name, compiled, got, "compiled " + where);
    }
    EXPECT_EQ(f.graphs().size(), 1u) << name << ": one trace serves every call";
  }
}

TEST_P(CompiledMutation, CapturedTensorsAreReadAndWrittenByReference) {
  KILN_SKIP_WITHOUT_TEST_DEVICE();
  ModeRun run(GetParam());
  Tensor w = randn({4, 3}).to(test_device()), momentum = zeros({4, 3}).to(test_device());
  // An SGD-with-momentum step on captured parameters: the optimizer's in-place update.
  auto step = [&](const Tensor& grad) {
    momentum.mul_(0.9).add_(grad);
    w.sub_(momentum, 0.1);
    return w.sum();
  };
  auto f = compile(step, GetParam().options("sgd_step"));
  Tensor w_eager = w.clone(), m_eager = momentum.clone();
  auto eager_step = [&](const Tensor& grad) {
    m_eager.mul_(0.9).add_(grad);
    w_eager.sub_(m_eager, 0.1);
    return w_eager.sum();
  };
  for (int i = 0; i < 4; ++i) {
    Tensor grad = randn({4, 3}).to(test_device());
    Tensor got = f(grad), want = eager_step(grad);
    EXPECT_EQ(compare_tensors(got, want, 1e-5, 1e-5), "") << "step " << i;
    EXPECT_EQ(compare_tensors(w, w_eager, 1e-5, 1e-5), "") << "step " << i;
    EXPECT_EQ(compare_tensors(momentum, m_eager, 1e-5, 1e-5), "") << "step " << i;
  }
  EXPECT_EQ(f.graphs().size(), 1u);
  // Raw writes between calls are seen.
  w.copy_(ones({4, 3}).to(test_device()));
  w_eager.copy_(ones({4, 3}));
  Tensor grad = randn({4, 3}).to(test_device());
  EXPECT_EQ(compare_tensors(f(grad), eager_step(grad), 1e-5, 1e-5), "");
}

// A write-back whose value an elementwise kernel computes is written by that kernel into
// the argument itself (PlanExecutable::run_writing_into): no fresh buffer, no copy. An
// Adam-like update of three captured parameters of different shapes (one foreach kernel of
// multi-output parts, each storing p, m and v over the p, m and v it reads).
TEST_P(CompiledMutation, ElementwiseWriteBacksAreWrittenIntoTheArguments) {
  KILN_SKIP_WITHOUT_TEST_DEVICE();
  ModeRun run(GetParam());
  const std::vector<Shape> shapes = {{256, 1024}, {1024}, {33, 65}};
  std::vector<Tensor> p, m, v, p_eager, m_eager, v_eager;
  for (const Shape& s : shapes) {
    p.push_back(randn(s).to(test_device()));
    m.push_back(randn(s).abs().to(test_device()));
    v.push_back(randn(s).abs().to(test_device()));
    p_eager.push_back(p.back().clone());
    m_eager.push_back(m.back().clone());
    v_eager.push_back(v.back().clone());
  }
  auto update = [](std::vector<Tensor>& ps, std::vector<Tensor>& ms, std::vector<Tensor>& vs,
                   const std::vector<Tensor>& gs) {
    for (size_t i = 0; i < ps.size(); ++i) {
      ms[i].mul_(0.9).add_(gs[i], 0.1);
      vs[i].mul_(0.99).add_(gs[i] * gs[i], 0.01);
      ps[i].sub_(ms[i] / (vs[i].sqrt() + 1e-8), 0.01);
    }
    return gs[1] + 1;
  };
  auto f = compile(
      [&](Tensor g0, Tensor g1, Tensor g2) {
        return update(p, m, v, {g0, g1, g2});
      },
      GetParam().options("adam_like_in_place"));
  std::vector<const void*> addresses;
  for (const Tensor& t : p) addresses.push_back(t.data_ptr());
  const bool async =
      GetParam().mode == CompileMode::Async || GetParam().mode == CompileMode::AsyncProgressive;
  // Async modes answer eagerly until the compiled stage lands and then measured faster
  // (its trial interleaves eager calls); only calls that ran compiled are checked, and at
  // least two must.
  int compiled_steps = 0;
  for (int step = 0; step < (async ? 80 : 3) && compiled_steps < 3; ++step) {
    std::vector<Tensor> g;
    for (const Shape& s : shapes) g.push_back(randn(s).to(test_device()));
    const int64_t in_place = stats()["compile.write_backs_in_place"];
    const int64_t eager_runs = stats()["async.eager_runs"];
    reset_peak_memory_stats(test_device());
    const int64_t before = memory_allocated(test_device());
    f(g[0], g[1], g[2]);
    const int64_t grew = max_memory_allocated(test_device()) - before;
    update(p_eager, m_eager, v_eager, g);
    for (size_t i = 0; i < shapes.size(); ++i) {
      EXPECT_EQ(compare_tensors(p[i], p_eager[i], 1e-5, 1e-5), "") << "p" << i << " step " << step;
      EXPECT_EQ(compare_tensors(m[i], m_eager[i], 1e-5, 1e-5), "") << "m" << i << " step " << step;
      EXPECT_EQ(compare_tensors(v[i], v_eager[i], 1e-5, 1e-5), "") << "v" << i << " step " << step;
      EXPECT_EQ(p[i].data_ptr(), addresses[i]) << "the parameter keeps its memory";
    }
    if (async && step == 0) {
      ASSERT_TRUE(f.wait_for_stages(120));
    }
    if (stats()["async.eager_runs"] != eager_runs) continue;  // into fresh values copied back
    ++compiled_steps;
    EXPECT_EQ(stats()["compile.write_backs_in_place"] - in_place, 9) << "step " << step;
    EXPECT_LT(grew, int64_t{1} << 20) << "step " << step << ": no parameter-sized buffer";
  }
  EXPECT_GE(compiled_steps, 2) << "the compiled stage never took over";
}

// Writing into an argument must not change what the graph reads: not written over (copied
// back instead) are an argument the kernel also reads at a constant index, one whose old
// value a later kernel reads, and one another part of the same foreach kernel reads; nor
// is an intermediate read at a constant index. Each equals eager.
TEST_P(CompiledMutation, WritingIntoArgumentsKeepsWhatTheGraphReads) {
  KILN_SKIP_WITHOUT_TEST_DEVICE();
  ModeRun run(GetParam());
  using Case = std::function<Tensor(Tensor&, Tensor&, Tensor&)>;
  const std::vector<std::pair<std::string, Case>> cases = {
      {"constant_index", [](Tensor& a, Tensor&, Tensor&) { return a.sub_(a.narrow(0, 0, 1)) * 1; }},
      {"later_reader",
       [](Tensor& a, Tensor&, Tensor&) {
         Tensor e = a.exp();
         a.add_(1);
         return (e * a).sum();
       }},
      {"other_part",
       [](Tensor& a, Tensor& b, Tensor& c) {
         Tensor old = a.view({2, 3}).clone();
         a.mul_(c);
         b.mul_(old);
         return c + 1;
       }},
      {"intermediate_at_constant_index",
       [](Tensor& a, Tensor&, Tensor&) {
         Tensor t = a.exp();
         return t - t.narrow(0, 0, 1) + t.sum();
       }},
  };
  for (const auto& [name, fn] : cases) {
    Case c = fn;
    auto f = compile([c](Tensor a, Tensor b, Tensor k) { return c(a, b, k); },
                     GetParam().options("still_read_" + name));
    for (int call = 0; call < 2; ++call) {
      Tensor a = randn({6}).to(test_device()), b = randn({2, 3}).to(test_device()),
             k = randn({6}).to(test_device());
      Tensor a_eager = a.clone(), b_eager = b.clone(), k_eager = k.clone();
      Tensor got = f(a, b, k), want = c(a_eager, b_eager, k_eager);
      std::string where = fmt::format("{} call {}", name, call);
      EXPECT_EQ(compare_tensors(got, want, 1e-5, 1e-5), "") << where;
      EXPECT_EQ(compare_tensors(a, a_eager, 1e-5, 1e-5), "") << where << " a";
      EXPECT_EQ(compare_tensors(b, b_eager, 1e-5, 1e-5), "") << where << " b";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Modes, CompiledMutation, ::testing::ValuesIn(all_mode_configs()),
                         mode_config_name);

// The user-trial cases: weights changed after the first call.
TEST(CapturedByReference, ChangedWeightsAreSeen) {
  Tensor w = randn({3, 3});
  auto f = compile([&](Tensor x) { return matmul(x, w); });
  Tensor x = randn({2, 3});
  EXPECT_EQ(compare_tensors(f(x), matmul(x, w), 1e-5, 1e-5), "");
  w.mul_(2);  // in place
  EXPECT_EQ(compare_tensors(f(x), matmul(x, w), 1e-5, 1e-5), "");
  w.data<float>()[0] = 100;  // raw write
  EXPECT_EQ(compare_tensors(f(x), matmul(x, w), 1e-5, 1e-5), "");
  EXPECT_EQ(f.graphs().size(), 1u);
  int64_t gone = stats()["guard.captured_gone"];
  w = w * 2;  // rebound: the tensor the trace captured is gone, so the function retraces
  EXPECT_EQ(compare_tensors(f(x), matmul(x, w), 1e-5, 1e-5), "");
  EXPECT_EQ(stats()["guard.captured_gone"] - gone, 1);
  EXPECT_EQ(f.graphs().size(), 1u) << "the dead entry was replaced";
}

TEST(CapturedByReference, FrozenTensorsRecompileWhenWritten) {
  Tensor w = randn({3, 3});
  CompileOptions options;
  options.freeze_captured = true;
  auto f = compile([&](Tensor x) { return matmul(x, w); }, options);
  Tensor x = randn({2, 3});
  EXPECT_EQ(compare_tensors(f(x), matmul(x, w), 1e-5, 1e-5), "");
  EXPECT_EQ(compare_tensors(f(x), matmul(x, w), 1e-5, 1e-5), "");
  int64_t traces = stats()["trace.graphs"], changed = stats()["guard.frozen_changed"];
  w.add_(1);
  EXPECT_EQ(compare_tensors(f(x), matmul(x, w), 1e-5, 1e-5), "");
  w.data<float>()[4] = -7;
  EXPECT_EQ(compare_tensors(f(x), matmul(x, w), 1e-5, 1e-5), "");
  EXPECT_EQ(stats()["trace.graphs"] - traces, 2);
  EXPECT_EQ(stats()["guard.frozen_changed"] - changed, 2);
  // A frozen tensor the function itself mutates is refused.
  auto g = compile([&](Tensor x) { return w.add_(x); }, options);
  EXPECT_THROW(g(randn({3, 3})), Error);
}

TEST(CapturedByReference, DropoutMaskFromCapturedTensorIsRead) {
  // A mask captured from outside and refreshed in place each step (the pattern a training
  // loop uses until random numbers are graph ops) is read at every call.
  Tensor mask = ones({8});
  auto f = compile([&](Tensor x) { return x * mask; });
  Tensor x = randn({8});
  for (int i = 0; i < 3; ++i) {
    mask.copy_(rand({8}) < 0.5);
    EXPECT_EQ(compare_tensors(f(x), x * mask, 0, 0), "") << i;
  }
}

TEST(CapturedByReference, WritesToAliasedInputsAreRefused) {
  Tensor x = randn({4});
  auto f = compile([](Tensor a, Tensor b) {
    a.add_(1);
    return b * 2;
  });
  Tensor view = x.narrow(0, 0, 4);
  try {
    f(x, view);
    ADD_FAILURE() << "a write to an input that shares memory with another was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("shares memory"), std::string::npos) << e.what();
  }
  // Separate tensors are fine, and a later aliased call is refused again.
  Tensor y = randn({4});
  EXPECT_EQ(compare_tensors(f(x, y), y * 2, 0, 0), "");
  EXPECT_THROW(f(x, view), Error);
}

TEST(CapturedByReference, ReturnedInputIsThatTensor) {
  auto f = compile([](Tensor x) { return x.add_(1); });
  Tensor x = zeros({3});
  Tensor out = f(x);
  EXPECT_EQ(out.impl(), x.impl());
  EXPECT_EQ(compare_tensors(x, ones({3}), 0, 0), "");
  EXPECT_EQ(stats().count("compile.write_backs"), 1u);
}

TEST(CapturedByReference, InPlaceOnAnExpandedViewIsRefusedWhileTracing) {
  auto f = compile([](Tensor x) {
    x.expand({3, 4}).add_(1);
    return x;
  });
  EXPECT_THROW(f(randn({4})), Error);
}

}  // namespace
}  // namespace kiln::testing

namespace kiln::testing {
namespace {

// A captured host tensor moved to the GPU inside the function: the copy is a constant, and a
// write to the host tensor makes the next call trace again.
TEST(CapturedByReference, CapturedTensorMovedToTheDeviceIsReadAgainAfterAWrite) {
  if (test_device() != Device::cuda) GTEST_SKIP() << "moves a tensor to the GPU";
  KILN_SKIP_WITHOUT_TEST_DEVICE();
  Tensor w = randn({3, 3});  // on the host
  auto f = compile([&](Tensor x) { return matmul(x, w.cuda()); });
  Tensor x = randn({2, 3});
  EXPECT_EQ(compare_tensors(f(x.cuda()), matmul(x, w), 1e-5, 1e-5), "");
  int64_t changed = stats()["guard.frozen_changed"];
  w.mul_(2);
  EXPECT_EQ(compare_tensors(f(x.cuda()), matmul(x, w), 1e-5, 1e-5), "");
  EXPECT_EQ(stats()["guard.frozen_changed"] - changed, 1);
}

}  // namespace
}  // namespace kiln::testing
