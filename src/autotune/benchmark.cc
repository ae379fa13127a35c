#include "autotune/benchmark.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>

#include "compile/shared_object.h"
#include "kiln/tensor.h"
#include "support/spans.h"
#include "support/text.h"
#include "tensor/tensor_impl.h"

namespace kiln {

namespace {

constexpr size_t kMaxKernels = 64;
constexpr size_t kMaxBuffers = 1024;
constexpr size_t kMaxSizes = 256;

int64_t parse_count(std::string_view text, const char* what) {
  int64_t v = -1;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (error != std::errc() || end != text.data() + text.size() || v < 0 || v > (int64_t{1} << 40))
    throw WireError(fmt::format("benchmark request: bad {} '{}'", what, text));
  return v;
}

bool is_symbol(std::string_view s) {
  return !s.empty() && s.size() <= 200 && !std::isdigit(static_cast<unsigned char>(s[0])) &&
         std::all_of(s.begin(), s.end(), [](char c) {
           return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
         });
}

// Inputs get values like real data (uniform in [0, 1) for floats, so logs and roots stay
// finite; small positive integers, so integer division never divides by zero).
Tensor filled(const BenchmarkBuffer& b) {
  if (is_floating(b.dtype)) return rand({b.elements}, b.dtype);
  return full({b.elements}, b.dtype == DType::bool_ ? Scalar(true) : Scalar(int64_t{3}), b.dtype);
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

Job benchmark_job(const BenchmarkRequest& request, std::string what) {
  std::vector<std::string> sizes, buffers;
  for (int64_t s : request.sizes) sizes.push_back(std::to_string(s));
  for (const BenchmarkBuffer& b : request.buffers)
    buffers.push_back(fmt::format("{}:{}", dtype_name(b.dtype), b.elements));
  return Job{MessageType::benchmark,
             {{"object", request.object},
              {"kernels", fmt::format("{}", fmt::join(request.kernels, ","))},
              {"sizes", fmt::format("{}", fmt::join(sizes, ","))},
              {"buffers", fmt::format("{}", fmt::join(buffers, ","))},
              {"budget", fmt::format("{}", request.seconds_per_kernel)}},
             std::move(what),
             default_job_timeout()};
}

std::vector<double> benchmark_times(const Fields& reply, size_t kernels) {
  auto it = reply.find("times");
  if (it == reply.end()) throw WireError("benchmark reply without times");
  std::vector<double> times;
  for (std::string_view t : split_text(it->second, ',')) {
    double v = -1;
    auto [end, error] = std::from_chars(t.data(), t.data() + t.size(), v);
    if (error != std::errc() || end != t.data() + t.size() || !(v >= 0) || v > 1e6)
      throw WireError(fmt::format("benchmark reply: bad time '{}'", t));
    times.push_back(v);
  }
  if (times.size() != kernels)
    throw WireError(fmt::format("benchmark reply: {} times for {} kernels", times.size(), kernels));
  return times;
}

std::vector<double> benchmark_in_worker(WorkerStart start, bool background,
                                        const BenchmarkRequest& request, std::string what) {
  return benchmark_times(
      benchmark_pool(start, background).submit(benchmark_job(request, std::move(what))).get(),
      request.kernels.size());
}

Fields answer_benchmark(const Frame& request) {
  using Kernel = void (*)(const int64_t*, char* const*);
  std::vector<std::string_view> names = split_text(request.at("kernels"), ',');
  if (names.empty() || names.size() > kMaxKernels)
    throw WireError("benchmark request: 1 to 64 kernels");
  for (std::string_view n : names)
    if (!is_symbol(n)) throw WireError(fmt::format("benchmark request: bad kernel name '{}'", n));
  std::vector<int64_t> sizes;
  for (std::string_view s : split_text(request.at("sizes"), ','))
    sizes.push_back(parse_count(s, "size"));
  if (sizes.size() > kMaxSizes) throw WireError("benchmark request: too many sizes");
  std::vector<BenchmarkBuffer> specs;
  int64_t bytes = 0;
  for (std::string_view item : split_text(request.at("buffers"), ',')) {
    size_t colon = item.find(':');
    BenchmarkBuffer b;
    if (colon == std::string_view::npos || !parse_dtype(item.substr(0, colon), &b.dtype))
      throw WireError(fmt::format("benchmark request: bad buffer '{}'", item));
    b.elements = parse_count(item.substr(colon + 1), "buffer length");
    bytes += b.elements * static_cast<int64_t>(dtype_size(b.dtype));
    specs.push_back(b);
  }
  if (specs.empty() || specs.size() > kMaxBuffers)
    throw WireError("benchmark request: 1 to 1024 buffers");
  const int64_t memory = static_cast<int64_t>(sysconf(_SC_PHYS_PAGES)) * sysconf(_SC_PAGESIZE);
  if (bytes > memory / 2)
    throw Error(fmt::format(
        "benchmark request: {} bytes of buffers, more than half of this machine's memory", bytes));
  double budget = 0;
  const std::string& budget_text = request.at("budget");
  auto [end, error] =
      std::from_chars(budget_text.data(), budget_text.data() + budget_text.size(), budget);
  if (error != std::errc() || end != budget_text.data() + budget_text.size() || !(budget > 0) ||
      budget > 10)
    throw WireError(fmt::format("benchmark request: bad budget '{}'", budget_text));

  SpanScope span("autotune", fmt::format("benchmark {} configs", names.size()));
  std::shared_ptr<SharedObject> object =
      SharedObject::load_bytes(request.at("object"), "benchmarked kernels");
  std::vector<Kernel> kernels;
  for (std::string_view n : names)
    kernels.push_back(reinterpret_cast<Kernel>(object->symbol(std::string(n))));
  std::vector<Tensor> tensors;
  std::vector<char*> buffers;
  for (const BenchmarkBuffer& b : specs) {
    tensors.push_back(filled(b));
    buffers.push_back(tensors.back().impl()->data_ptr());
  }
  for (Kernel k : kernels) k(sizes.data(), buffers.data());  // warm: caches, pages, threads
  std::vector<std::vector<double>> samples(kernels.size());
  const auto start = std::chrono::steady_clock::now();
  for (int round = 0;
       round < 3 ||
       (seconds_since(start) < budget * static_cast<double>(kernels.size()) && round < 500);
       ++round) {
    for (size_t i = 0; i < kernels.size(); ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      kernels[i](sizes.data(), buffers.data());
      samples[i].push_back(seconds_since(t0));
    }
  }
  std::vector<std::string> medians;
  for (std::vector<double>& s : samples) {
    std::nth_element(s.begin(), s.begin() + static_cast<std::ptrdiff_t>(s.size() / 2), s.end());
    medians.push_back(fmt::format("{:.9g}", s[s.size() / 2]));
  }
  return {{"times", fmt::format("{}", fmt::join(medians, ","))}};
}

}  // namespace kiln
