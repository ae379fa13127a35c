// The persistent caches: a private directory or none, checksummed entries whose corruption
// is a miss that gets rebuilt, warm starts that compile nothing and start no worker, and
// many processes writing the same keys at once.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <future>

#include "cache/cache.h"
#include "driver/graph_compiler.h"
#include "driver/object_store.h"
#include "kiln/kiln.h"
#include "support/blas.h"
#include "support/build_id.h"
#include "support/compare.h"
#include "support/process.h"
#include "trace/tracer.h"
#include "worker/pool.h"

namespace kiln {
namespace {

namespace fs = std::filesystem;

class CacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) / fmt::format("kiln-cache-test-{}", getpid());
    fs::remove_all(dir_);
    setenv("KILN_CACHE_DIR", dir_.c_str(), 1);
    unsetenv("KILN_FORCE_DISABLE_CACHES");
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove(dir_, ec);  // a symlink
    fs::remove_all(dir_, ec);
  }
  std::vector<fs::path> entries(const char* kind) const {
    std::vector<fs::path> out;
    for (const auto& e : fs::directory_iterator(dir_ / kind)) out.push_back(e.path());
    return out;
  }
  fs::path dir_;
};

mode_t mode_of(const fs::path& p) {
  struct stat st {};
  stat(p.c_str(), &st);
  return st.st_mode & 07777;
}

TEST_F(CacheTest, DirectoriesArePrivate) {
  std::optional<Cache> cache = Cache::open();
  ASSERT_TRUE(cache);
  EXPECT_EQ(mode_of(dir_), 0700u);
  EXPECT_EQ(mode_of(dir_ / "kernels"), 0700u);
  EXPECT_EQ(mode_of(dir_ / "graphs"), 0700u);
  cache->put(CacheKind::kernel, content_key("x"), "payload");
  EXPECT_EQ(mode_of(dir_ / "kernels" / (content_key("x") + ".so")), 0600u);
}

void expect_refused(const std::string& why) {
  try {
    Cache::open();
    ADD_FAILURE() << "accepted a cache directory that is " << why;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(why), std::string::npos) << e.what();
  }
}

TEST_F(CacheTest, RefusesDirectoriesOthersCanRead) {
  fs::create_directories(dir_);
  chmod(dir_.c_str(), 0755);  // what mkdir makes under a usual umask: not private
  expect_refused("readable by everyone");
  chmod(dir_.c_str(), 0750);
  expect_refused("readable by its group");
  chmod(dir_.c_str(), 0701);
  expect_refused("readable by everyone");
  chmod(dir_.c_str(), 0700);
  EXPECT_TRUE(Cache::open());
}

TEST_F(CacheTest, RefusesDirectoriesOthersCanWrite) {
  fs::create_directories(dir_);
  chmod(dir_.c_str(), 0770);
  expect_refused("writable by its group");
  chmod(dir_.c_str(), 0777);
  expect_refused("writable by everyone");
  chmod(dir_.c_str(), 0700);
  fs::create_directories(dir_ / "kernels");
  chmod((dir_ / "kernels").c_str(), 0777);
  expect_refused("writable by everyone");
}

TEST_F(CacheTest, RefusesSymlinksAndOtherOwners) {
  fs::create_directories(dir_.string() + "-target");
  fs::create_directory_symlink(dir_.string() + "-target", dir_);
  expect_refused("not a directory");
  fs::remove(dir_);
  fs::remove_all(dir_.string() + "-target");
  if (geteuid() != 0) GTEST_SKIP() << "giving a directory to another user needs root";
  fs::create_directories(dir_);
  ASSERT_EQ(chown(dir_.c_str(), 65534, 65534), 0);
  expect_refused("owned by uid 65534");
}

TEST_F(CacheTest, ForceDisableTurnsCachesOff) {
  setenv("KILN_FORCE_DISABLE_CACHES", "1", 1);
  EXPECT_FALSE(Cache::open());
  setenv("KILN_FORCE_DISABLE_CACHES", "yes", 1);
  try {
    Cache::open();
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("KILN_FORCE_DISABLE_CACHES"), std::string::npos);
  }
  unsetenv("KILN_FORCE_DISABLE_CACHES");
}

TEST_F(CacheTest, CorruptOrTruncatedEntriesAreMisses) {
  Cache cache(dir_.string());
  std::string key = content_key("entry");
  cache.put(CacheKind::graph, key, "the payload");
  EXPECT_EQ(cache.get(CacheKind::graph, key), "the payload");
  fs::path file = dir_ / "graphs" / (key + ".graph");
  std::string bytes;
  {
    std::ifstream in(file, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  auto rewrite = [&](const std::string& b) {
    std::ofstream(file, std::ios::binary | std::ios::trunc) << b;
  };
  std::string flipped = bytes;
  flipped.back() ^= 1;
  rewrite(flipped);
  EXPECT_FALSE(cache.get(CacheKind::graph, key)) << "flipped payload byte";
  rewrite(bytes.substr(0, bytes.size() - 3));
  EXPECT_FALSE(cache.get(CacheKind::graph, key)) << "truncated";
  rewrite(bytes.substr(0, 10));
  EXPECT_FALSE(cache.get(CacheKind::graph, key)) << "truncated header";
  rewrite("X" + bytes.substr(1));
  EXPECT_FALSE(cache.get(CacheKind::graph, key)) << "bad magic";
  rewrite("");
  EXPECT_FALSE(cache.get(CacheKind::graph, key)) << "truncated to 0";
  rewrite(bytes.substr(0, bytes.size() / 2));
  EXPECT_FALSE(cache.get(CacheKind::graph, key)) << "half deleted";
  EXPECT_THROW(cache.get(CacheKind::graph, "../../etc/passwd"), Error);
}

Tensor pointwise(const Tensor& x, const Tensor& y) { return ((x + y).sin() * 2.0f).cos(); }

// Each damage to both entries of a compiled graph: a logged miss, a rebuild, and then
// whole entries that the next process hits.
TEST_F(CacheTest, DamagedEntriesAreLoggedMissesAndRebuilt) {
  Tensor x = randn({64, 33}), y = randn({64, 33});
  Tensor want = pointwise(x, y);
  CompileOptions o;
  o.mode = CompileMode::InProcess;
  EXPECT_EQ(testing::compare_tensors(compile(pointwise, o)(x, y), want, 1e-5, 1e-5), "");
  ASSERT_EQ(entries("graphs").size(), 1u);
  ASSERT_EQ(entries("kernels").size(), 1u);
  using Damage = std::function<void(const fs::path&)>;
  std::vector<std::pair<const char*, Damage>> damages = {
      {"flipped bytes",
       [](const fs::path& p) {
         std::fstream file(p, std::ios::binary | std::ios::in | std::ios::out);
         file.seekp(40);
         file.put('\x5a');
         file.seekp(-1, std::ios::end);
         file.put('\x00');
       }},
      {"truncated to 0", [](const fs::path& p) { fs::resize_file(p, 0); }},
      {"half deleted", [](const fs::path& p) { fs::resize_file(p, fs::file_size(p) / 2); }},
  };
  setenv("KILN_LOGS", "cache", 1);
  for (const auto& [what, damage] : damages) {
    SCOPED_TRACE(what);
    for (const char* kind : {"graphs", "kernels"})
      for (const fs::path& p : entries(kind)) damage(p);
    forget_loaded_objects();
    auto before = stats();
    ::testing::internal::CaptureStderr();
    Tensor got = compile(pointwise, o)(x, y);
    std::string log = ::testing::internal::GetCapturedStderr();
    EXPECT_EQ(testing::compare_tensors(got, want, 1e-5, 1e-5), "");
    auto after = stats();
    EXPECT_EQ(after["cache.graph.miss"] - before["cache.graph.miss"], 1);
    EXPECT_EQ(after["cache.kernel.miss"] - before["cache.kernel.miss"], 1);
    EXPECT_EQ(after["compile.in_process"] - before["compile.in_process"], 1);
    EXPECT_NE(log.find("[kiln:cache]"), std::string::npos) << "the miss was not logged";
    EXPECT_NE(log.find("treated as a miss"), std::string::npos) << log;
    // Rewritten whole: the next process hits both.
    forget_loaded_objects();
    compile(pointwise, o)(x, y);
    auto last = stats();
    EXPECT_EQ(last["cache.graph.hit"] - after["cache.graph.hit"], 1);
    EXPECT_EQ(last["cache.kernel.hit"] - after["cache.kernel.hit"], 1);
  }
  unsetenv("KILN_LOGS");
}

Graph traced_pointwise(const std::string& name, float scale) {
  Tracer tracer(name, /*freeze_captured=*/false);
  std::vector<Tensor> in = tracer.add_inputs({randn({4, 4}), randn({4, 4})});
  Tensor weight = full({4}, scale);
  std::vector<Tensor> out;
  {
    RecorderScope scope(&tracer);
    out = {pointwise(in[0], in[1]) * weight};
  }
  return tracer.finish(out).graph;
}

TEST_F(CacheTest, KeysCoverWhatChangesTheCode) {
  Graph g = traced_pointwise("g", 2.0f);
  NativeCompile optimized, fast, with_clang;
  fast.tier = Tier::fast;
  with_clang.compiler = "clang";
  const std::string key = graph_cache_key(g, optimized);
  EXPECT_NE(key, graph_cache_key(g, fast)) << "tier";
  EXPECT_NE(key, graph_cache_key(g, with_clang)) << "compiler";
  EXPECT_NE(key, graph_cache_key(traced_pointwise("other_name", 2.0f), optimized)) << "graph text";
  EXPECT_NE(key, graph_cache_key(traced_pointwise("g", 3.0f), optimized)) << "a constant's value";
  EXPECT_NE(graph_cache_key_text(g, optimized).find(std::string(build_id())), std::string::npos)
      << "kiln build";
  EXPECT_NE(graph_cache_key_text(g, optimized).find("flags"), std::string::npos) << "CPU features";
  // What does not change code does not change the key: logging, the mode, the start.
  setenv("KILN_LOGS", "all", 1);
  NativeCompile in_workers = optimized;
  in_workers.in_workers = true;
  in_workers.start = WorkerStart::Fork;
  EXPECT_EQ(key, graph_cache_key(g, in_workers));
  unsetenv("KILN_LOGS");
  // Kernel keys: the toolchain's identity (flags, version, target) and the source.
  Toolchain t = toolchain_for(Tier::optimized);
  std::string base = content_key(t.identity() + "\nsource");
  for (auto change : std::vector<std::function<void(Toolchain&)>>{
           [](Toolchain& c) { c.flags.push_back("-funroll-loops"); },
           [](Toolchain& c) { c.version += " (patched)"; },
           [](Toolchain& c) { c.target = "x86_64 skylake"; },
           [](Toolchain& c) { c.binary = "/opt/gcc/bin/gcc"; }}) {
    Toolchain changed = t;
    change(changed);
    EXPECT_NE(content_key(changed.identity() + "\nsource"), base);
  }
}

TEST_F(CacheTest, WarmStartCompilesNothingAndStartsNoWorker) {
  Tensor x = randn({64, 33}), y = randn({64, 33});
  CompileOptions in_process;
  in_process.mode = CompileMode::InProcess;
  compile(pointwise, in_process)(x, y);  // populates the cache: every mode shares entries
  forget_loaded_objects();
  auto before = stats();
  CompileOptions workers;
  workers.mode = CompileMode::Subprocess;
  Tensor got = compile(pointwise, workers)(x, y);
  EXPECT_EQ(testing::compare_tensors(got, pointwise(x, y), 1e-5, 1e-5), "");
  auto after = stats();
  EXPECT_EQ(after["compile.in_process"], before["compile.in_process"]);
  EXPECT_EQ(after["compile.subprocess"], before["compile.subprocess"]);
  EXPECT_EQ(after["cache.graph.hit"] - before["cache.graph.hit"], 1);
  EXPECT_FALSE(any_pool_started()) << "a process that only loads cached results started the pool";
}

// Fresh processes: the kiln CLI, twice, on one cache.
TEST_F(CacheTest, AFreshProcessLoadsFromTheCache) {
  setenv("KILN_LOGS", "workers,pipeline", 1);
  std::string graph = std::string(KILN_SOURCE_DIR) + "/examples/graphs/pointwise.kiln";
  ProcessResult cold =
      run_process({KILN_CLI_PATH, "run", graph, "--dim", "s0=8", "--mode", "subprocess"}, 120);
  ProcessResult warm =
      run_process({KILN_CLI_PATH, "run", graph, "--dim", "s0=8", "--mode", "subprocess"}, 120);
  unsetenv("KILN_LOGS");
  ASSERT_TRUE(cold.ok()) << cold.output;
  ASSERT_TRUE(warm.ok()) << warm.output;
  EXPECT_NE(cold.output.find("ready (subprocess start)"), std::string::npos) << cold.output;
  EXPECT_EQ(warm.output.find("ready"), std::string::npos) << "the warm start started a worker:\n"
                                                          << warm.output;
  auto checksum = [](const std::string& out) { return out.substr(out.find("output 0:")); };
  EXPECT_EQ(checksum(cold.output), checksum(warm.output));
}

// `kiln cache stats` counts every kind of file the cache holds, the kernel sources kept for
// profiles too, and `clear` removes them.
TEST_F(CacheTest, StatsCountKernelSources) {
  Cache cache = *Cache::open();
  cache.put(CacheKind::kernel, content_key("k"), "object");
  fs::create_directories(dir_ / "sources");
  for (const char* name : {"a.c", "b.c"})
    std::ofstream(dir_ / "sources" / name) << "void k(void) {}\n";
  ProcessResult stats = run_process({KILN_CLI_PATH, "cache", "stats"}, 60);
  ASSERT_TRUE(stats.ok()) << stats.output;
  EXPECT_NE(stats.output.find("kernels       1 entries"), std::string::npos) << stats.output;
  EXPECT_NE(stats.output.find("sources       2 files"), std::string::npos) << stats.output;
  ProcessResult cleared = run_process({KILN_CLI_PATH, "cache", "clear"}, 60);
  ASSERT_TRUE(cleared.ok()) << cleared.output;
  EXPECT_NE(cleared.output.find("1 kernel entries, 0 autotune entries, 2 kernel sources"),
            std::string::npos)
      << cleared.output;
  EXPECT_EQ(cache.sources_usage().entries, 0);
}

TEST_F(CacheTest, ManyProcessesWriteTheSameKeysSafely) {
  std::string graph = std::string(KILN_SOURCE_DIR) + "/examples/graphs/pointwise.kiln";
  std::vector<std::future<ProcessResult>> runs;
  for (int i = 0; i < 8; ++i)
    runs.push_back(std::async(std::launch::async, [&, i] {
      return run_process({KILN_CLI_PATH, "run", graph, "--dim", "s0=8", "--mode",
                          i % 2 ? "subprocess" : "inprocess"},
                         180);
    }));
  std::string first;
  for (auto& r : runs) {
    ProcessResult p = r.get();
    ASSERT_TRUE(p.ok()) << p.output;
    std::string out = p.output.substr(p.output.find("output 0:"));
    if (first.empty()) first = out;
    EXPECT_EQ(out, first);
  }
  Cache cache(dir_.string());
  ASSERT_EQ(entries("graphs").size(), 1u);
  for (const char* kind : {"graphs", "kernels"})
    for (const fs::path& p : entries(kind)) {
      EXPECT_EQ(p.string().find(".tmp."), std::string::npos) << "a temp file was left: " << p;
      const std::string key = p.stem().string();
      EXPECT_TRUE(
          cache.get(kind == std::string("graphs") ? CacheKind::graph : CacheKind::kernel, key))
          << p;
    }
}

}  // namespace
}  // namespace kiln
