#include "compile/toolchain.h"

#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>

#include "compile/nvrtc.h"
#include "kiln/error.h"
#include "support/cpu_features.h"
#include "support/env.h"
#include "support/files.h"
#include "support/process.h"
#include "support/spans.h"

namespace kiln {

namespace {

constexpr double kCompileTimeoutSeconds = 120;

bool runs(const std::string& binary) { return !first_output_line({binary, "--version"}).empty(); }

// The -march=native CPU name gcc resolves to (e.g. znver3), so cache keys differ per ISA.
std::string native_target(const std::string& binary) {
  static std::mutex mutex;
  static std::string& cached = *new std::string();  // never destroyed (used at exit)
  std::lock_guard<std::mutex> lock(mutex);
  if (!cached.empty()) return cached;
  ProcessResult r = run_process({binary, "-march=native", "-Q", "--help=target"}, 30);
  std::string arch = "native";
  auto at = r.output.find("-march=");
  if (at != std::string::npos) {
    auto line_end = r.output.find('\n', at);
    std::string line = r.output.substr(at + 7, line_end - at - 7);
    line.erase(0, line.find_first_not_of(" \t"));
    if (!line.empty()) arch = line;
  }
  cached = "x86_64 " + arch;
  return cached;
}

// The host's preferred vector width for gcc and clang (support/cpu_features.h says why
// -march=native alone is not enough). A kernel's VEC config overrides it per function.
std::string vector_width_flag() {
  return "-mprefer-vector-width=" + std::to_string(preferred_vector_width());
}

Toolchain make_gcc_like(const std::string& binary, const std::vector<std::string>& flags,
                        Tier tier) {
  Toolchain t{binary, binary, flags, first_output_line({binary, "--version"}), "", tier};
  t.target = native_target("gcc");
  return t;
}

// -O1 with the loop vectorizer: what the fast tier gives up against -O3 is unrolling,
// inlining heuristics and tuning, not vector code. -fno-math-errno lets the vector math in.
// -fexpensive-optimizations is what gates gcc's vzeroupper pass: without it a kernel returns
// with the upper halves of the vector registers dirty, and the SSE code the caller runs next
// (libkiln's eager kernels) pays a transition on every instruction: an eager call measured
// 1.8-3.5 s instead of 0.08 s after each -O1 AVX-512 kernel call.
Toolchain fast_gcc() {
  return make_gcc_like("gcc",
                       {"-O1", "-fexpensive-optimizations", "-ftree-vectorize", "-march=native",
                        vector_width_flag(), "-fno-math-errno", "-fopenmp", "-fPIC", "-shared"},
                       Tier::fast);
}

}  // namespace

std::string Toolchain::identity() const {
  return fmt::format("{}|{}|{}|{}|{}", name, binary, version, fmt::join(flags, " "), target);
}

namespace {

// The full path of `name` in PATH, or "" (no process started).
std::string find_in_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/bin:/bin";
  for (size_t start = 0; start <= dirs.size();) {
    size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    std::string candidate = dirs.substr(start, end - start) + "/" + name;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
    start = end + 1;
  }
  return "";
}

Toolchain probe_toolchain(Tier tier, const std::string& compiler) {
  std::string tcc = tier == Tier::light ? find_in_path("tcc") : "";
  if (!tcc.empty()) {
    // The fast tier must not pay a process start to learn its identity: the binary's path,
    // size and modification time stand for its version.
    struct stat st {};
    stat(tcc.c_str(), &st);
    std::string version = fmt::format("{} {} bytes, modified {}", tcc, st.st_size, st.st_mtime);
    // -nostdlib and no -lm: libc and libm are already in the process that loads the kernels,
    // and linking them costs tcc a third of its time.
    Toolchain t{"tcc", tcc, {"-shared", "-fPIC", "-nostdlib"}, version, "x86_64", Tier::light};
    return t;
  }
  if (tier != Tier::optimized) return fast_gcc();
  if (compiler != "gcc" && compiler != "clang")
    throw CompileError(fmt::format("unknown compiler '{}' (accepted: gcc, clang)", compiler));
  if (!runs(compiler)) throw CompileError(fmt::format("{} is not installed", compiler));
  return make_gcc_like(compiler,
                       {"-O3", "-march=native", vector_width_flag(), "-fno-math-errno", "-fopenmp",
                        "-fPIC", "-shared"},
                       Tier::optimized);
}

}  // namespace

namespace {

std::string binary_fingerprint(const std::string& name) {
  std::string path = find_in_path(name);
  struct stat st {};
  if (path.empty() || stat(path.c_str(), &st) != 0) return name + " missing";
  return fmt::format("{} {} {} {}", path, st.st_size, st.st_mtime, st.st_ino);
}

std::string cpu_fingerprint() {
  static const std::string& cpu = *new std::string([] {
    std::ifstream in("/proc/cpuinfo");
    std::string line, model, flags;
    while (std::getline(in, line) && (model.empty() || flags.empty())) {
      if (model.empty() && line.rfind("model name", 0) == 0) model = line;
      if (flags.empty() && line.rfind("flags", 0) == 0) flags = line;
    }
    return model + "\n" + flags;
  }());
  return cpu;
}

}  // namespace

std::string toolchain_fingerprint(Tier tier, const std::string& compiler) {
  if (tier != Tier::optimized)
    return fmt::format("{}\n{}\n{}\n{}", tier == Tier::light ? "light" : "fast",
                       binary_fingerprint("tcc"), binary_fingerprint("gcc"), cpu_fingerprint());
  return fmt::format("optimized {}\n{}\n{}", compiler, binary_fingerprint(compiler),
                     cpu_fingerprint());
}

Toolchain toolchain_for(Tier tier, const std::string& compiler) {
  // Probing runs the compilers (--version, the -march=native target): once per process.
  static std::mutex mutex;
  static auto& probed =
      *new std::map<std::pair<Tier, std::string>, Toolchain>();  // never destroyed
  std::lock_guard<std::mutex> lock(mutex);
  auto key = std::make_pair(tier, tier != Tier::optimized ? std::string() : compiler);
  auto it = probed.find(key);
  if (it == probed.end()) it = probed.emplace(key, probe_toolchain(tier, compiler)).first;
  return it->second;
}

namespace {

// Where a source that failed to compile is kept: only when asked, under the trace
// directory (KILN_TRACE=DIR: DIR/failed_sources/NAME.c); "" otherwise, the message then
// saying how to ask. The source is in the KILN_LOGS=output_code log as well.
std::string kept_source(const std::string& name, const std::string& source) {
  std::optional<std::string> trace = env_value("KILN_TRACE");
  if (!trace || trace->empty()) return " (set KILN_TRACE=DIR to keep its source)";
  const std::string dir = *trace + "/failed_sources";
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return "";
  const std::string path = fmt::format("{}/{}.c", dir, name);
  try {
    write_file_atomically(path, source);
  } catch (const Error&) {
    return "";
  }
  return "; source kept at " + path;
}

// Removes a compile's temp directory on every path out.
struct TempDirectory {
  std::string path;
  ~TempDirectory() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

}  // namespace

Toolchain unit_toolchain(const Toolchain& stage, bool light_unit) {
  return stage.tier == Tier::fast && light_unit ? toolchain_for(Tier::light) : stage;
}

Toolchain cuda_toolchain(const std::string& arch) {
  return Toolchain{
      "nvrtc", "", {"--std=c++17", "-default-device"}, "NVRTC " + nvrtc_version(), arch};
}

std::string cuda_fingerprint(const std::string& arch) {
  return fmt::format("cuda NVRTC {} {}", nvrtc_version(), arch);
}

std::string compile_object(const Toolchain& toolchain, const std::string& name,
                           const std::string& source) {
  if (toolchain.name == "nvrtc") return compile_cuda(name, source, toolchain.target);
  SpanScope span("compile", "toolchain " + name);
  TempDirectory temp;
  try {
    // Named by this process, so that the host can remove what a killed worker left.
    temp.path = make_private_temp_directory(scratch_prefix(getpid()));
  } catch (const Error& e) {
    throw CompileError(e.what());
  }
  const std::string& dir = temp.path;
  std::string c_path = fmt::format("{}/{}.c", dir, name);
  std::string so_path = fmt::format("{}/{}.so", dir, name);
  try {
    write_file_atomically(c_path, source);
  } catch (const Error& e) {
    throw CompileError(fmt::format("kernel {}: {}", name, e.what()));
  }
  auto compile = [&](const Toolchain& t) {
    std::vector<std::string> argv{t.binary};
    argv.insert(argv.end(), t.flags.begin(), t.flags.end());
    argv.insert(argv.end(), {"-o", so_path, c_path});
    if (t.name != "tcc") argv.push_back("-lm");
    return run_process(argv, kCompileTimeoutSeconds);
  };
  ProcessResult r = compile(toolchain);
  if (!r.ok() && toolchain.name == "tcc") {
    static const Toolchain& fallback = *new Toolchain(toolchain_for(Tier::fast));
    ProcessResult retry = compile(fallback);
    if (retry.ok())
      r = retry;
    else
      r.output = fmt::format("tcc: {}\ngcc -O1: {}", r.output, retry.output);
  }
  if (!r.ok())
    throw CompileError(fmt::format("kernel {} failed to compile with {} ({}){}:\n{}", name,
                                   toolchain.name, r.describe(), kept_source(name, source),
                                   r.output));
  try {
    return read_regular_file(so_path, int64_t{1} << 30);
  } catch (const Error& e) {
    throw CompileError(fmt::format("kernel {}: {}", name, e.what()));
  }
}

}  // namespace kiln
