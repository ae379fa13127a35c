#include <kiln/kiln.h>

#include <cmath>
#include <cstdio>

int main() {
  using namespace kiln;
  Tensor x = arange(8, DType::f32).reshape({2, 4});
  auto f = compile([](Tensor a) { return (a + 1.0f).sin().sum({1}); });
  Tensor y = f(x);
  double expected = std::sin(1.0) + std::sin(2.0) + std::sin(3.0) + std::sin(4.0);
  if (std::fabs(y.at({0}) - expected) > 1e-5) return 1;
  std::printf("consumer ok: kiln %s, y[0] = %.6f\n", std::string(version()).c_str(), y.at({0}));
  return 0;
}
