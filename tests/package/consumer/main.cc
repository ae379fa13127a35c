#include <kiln/kiln.h>

#include <cmath>
#include <cstdio>

// Compiles in this process and in compile workers of each start method: the moved prefix
// must still find kiln-worker relative to libkiln.so.
int main() {
  using namespace kiln;
  Tensor x = arange(8, DType::f32).reshape({2, 4});
  double expected = std::sin(1.0) + std::sin(2.0) + std::sin(3.0) + std::sin(4.0);
  for (WorkerStart start : {WorkerStart::Subprocess, WorkerStart::Fork, WorkerStart::Spawn}) {
    for (CompileMode mode : {CompileMode::InProcess, CompileMode::Subprocess}) {
      CompileOptions options;
      options.mode = mode;
      options.worker_start = start;
      auto f = compile([](Tensor a) { return (a + 1.0f).sin().sum({1}); }, options);
      Tensor y = f(x);
      if (std::fabs(y.at({0}) - expected) > 1e-5) return 1;
    }
  }
  if (stats()["compile.subprocess"] == 0) return 2;
  std::printf("consumer ok: kiln %s, compiled in workers\n", std::string(version()).c_str());
  return 0;
}
