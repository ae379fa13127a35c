// The cache loads only what kiln wrote for that kind and key (docs/design.md §6): entries
// copied between keys, forged under another secret, planted as FIFOs or behind a swapped
// directory are misses; roots with unsafe ancestors, the root directory and symlinks are
// refused; a failed write is a warning, not a failure.
#include <fcntl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <optional>
#include <thread>

#include "cache/cache.h"
#include "kiln/error.h"
#include "kiln/kiln.h"
#include "support/compare.h"

namespace kiln {
namespace {

namespace fs = std::filesystem;
using testing::error_of;

class CacheSecurity : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = fs::path(::testing::TempDir()) /
            fmt::format("kiln-cache-security-{}-{}", getpid(),
                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(base_);
    fs::create_directories(base_);
    ::chmod(base_.c_str(), 0700);
    dir_ = base_ / "cache";
  }
  void TearDown() override {
    std::error_code ec;
    fs::permissions(base_, fs::perms::owner_all, ec);
    fs::remove_all(base_, ec);
  }
  static std::string read(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  static void write(const fs::path& p, const std::string& bytes) {
    std::ofstream(p, std::ios::binary | std::ios::trunc) << bytes;
  }
  fs::path kernel_file(const fs::path& root, const std::string& key) const {
    return root / "kernels" / (key + ".so");
  }

  fs::path base_, dir_;
};

// S2 and the copied entry: a file that is not kiln's entry for this key is a miss, whatever
// its checksum.
TEST_F(CacheSecurity, EntriesCopiedBetweenKeysOrForgedAreMisses) {
  Cache cache(dir_.string());
  const std::string a = content_key("a"), b = content_key("b");
  cache.put(CacheKind::kernel, a, "the object of a");
  cache.put(CacheKind::kernel, b, "the object of b");
  ASSERT_EQ(cache.get(CacheKind::kernel, b), "the object of b");
  // A's entry copied over B's: B now holds A's whole, well-formed entry.
  fs::copy_file(kernel_file(dir_, a), kernel_file(dir_, b), fs::copy_options::overwrite_existing);
  EXPECT_FALSE(cache.get(CacheKind::kernel, b));
  // The same kind of file but another kind's entry: a graph entry under a kernel's name.
  cache.put(CacheKind::graph, b, "a plan");
  fs::copy_file(dir_ / "graphs" / (b + ".graph"), kernel_file(dir_, b),
                fs::copy_options::overwrite_existing);
  EXPECT_FALSE(cache.get(CacheKind::kernel, b));
  // A well-formed entry for this very key, built under another secret (another cache, as
  // an attacker who knows the format would): its MAC fails.
  Cache other((base_ / "elsewhere").string());
  other.put(CacheKind::kernel, b, "code kiln never built here");
  fs::copy_file(kernel_file(base_ / "elsewhere", b), kernel_file(dir_, b),
                fs::copy_options::overwrite_existing);
  EXPECT_FALSE(cache.get(CacheKind::kernel, b));
  EXPECT_NE(read(dir_ / "secret"), read(base_ / "elsewhere" / "secret"));
  // Rewritten by kiln, it is a hit again.
  cache.put(CacheKind::kernel, b, "the object of b");
  EXPECT_EQ(cache.get(CacheKind::kernel, b), "the object of b");
}

// The end-to-end form of the copied entry: it gave sum 3207 instead of 39 before.
TEST_F(CacheSecurity, ACopiedGraphEntryNeverGivesAnotherGraphsResult) {
  setenv("KILN_CACHE_DIR", dir_.c_str(), 1);
  Tensor x = randn({16});
  auto f = compile([](Tensor t) { return t * 2.0f + 1.0f; });
  auto g = compile([](Tensor t) { return (t - 3.0f).exp(); });
  Tensor fx = f(x), gx = g(x);
  std::vector<fs::path> graphs;
  for (const auto& e : fs::directory_iterator(dir_ / "graphs")) graphs.push_back(e.path());
  ASSERT_EQ(graphs.size(), 2u);
  fs::copy_file(graphs[0], graphs[1], fs::copy_options::overwrite_existing);
  // Fresh compiles of the same functions read the cache again.
  auto f2 = compile([](Tensor t) { return t * 2.0f + 1.0f; });
  auto g2 = compile([](Tensor t) { return (t - 3.0f).exp(); });
  EXPECT_EQ(testing::compare_tensors(f2(x), fx, 0, 0), "");
  EXPECT_EQ(testing::compare_tensors(g2(x), gx, 0, 0), "");
  unsetenv("KILN_CACHE_DIR");
}

// S1: once open, the cache is reached through its descriptors; a look-alike swapped in at
// its path (by whoever can rename in the parent) is never read.
TEST_F(CacheSecurity, ADirectorySwappedInAfterOpeningIsNeverRead) {
  Cache cache(dir_.string());
  const std::string key = content_key("k");
  cache.put(CacheKind::kernel, key, "kiln's object");
  Cache lookalike((base_ / "lookalike").string());
  lookalike.put(CacheKind::kernel, key, "the attacker's object");
  fs::rename(dir_, base_ / "moved");
  fs::rename(base_ / "lookalike", dir_);
  EXPECT_EQ(cache.get(CacheKind::kernel, key), "kiln's object");
}

// S1 as it was found: a look-alike exchanged with the cache directory in a loop
// (renameat2(RENAME_EXCHANGE), atomic, as fast as it goes) while the cache is read and
// written; every read gets kiln's object, and no write lands in the look-alike.
TEST_F(CacheSecurity, ADirectoryExchangedInALoopIsNeverReadOrWritten) {
  Cache cache(dir_.string());
  const std::string key = content_key("raced");
  cache.put(CacheKind::kernel, key, "kiln's object");
  const fs::path lookalike = base_ / "lookalike";
  Cache(lookalike.string()).put(CacheKind::kernel, key, "the attacker's object");
  std::atomic<bool> stop{false};
  std::atomic<int> exchanges{0};
  std::thread swapper([&] {
    while (!stop) {
      if (::syscall(SYS_renameat2, AT_FDCWD, dir_.c_str(), AT_FDCWD, lookalike.c_str(),
                    RENAME_EXCHANGE) == 0)
        ++exchanges;
    }
  });
  int wrong = 0;
  for (int i = 0; i < 2000; ++i) {
    wrong += cache.get(CacheKind::kernel, key) != std::optional<std::string>("kiln's object");
    cache.put(CacheKind::kernel, content_key(fmt::format("written {}", i)), "an object");
  }
  stop = true;
  swapper.join();
  EXPECT_EQ(wrong, 0);
  EXPECT_GT(exchanges.load(), 100) << "the race was not run";
  // Whichever path holds which directory now, the writes are all in kiln's.
  const fs::path ours = exchanges % 2 ? lookalike : dir_, theirs = exchanges % 2 ? dir_ : lookalike;
  EXPECT_TRUE(fs::exists(kernel_file(ours, content_key("written 1999"))));
  EXPECT_FALSE(fs::exists(kernel_file(theirs, content_key("written 0"))));
}

// S1's precondition: a cache below a directory another user controls is refused.
TEST_F(CacheSecurity, RootsBelowDirectoriesOthersControlAreRefused) {
  fs::create_directories(base_ / "shared");
  ::chmod((base_ / "shared").c_str(), 0777);  // writable by everyone, not sticky
  EXPECT_NE(error_of([&] {
              Cache((base_ / "shared" / "cache").string());
            }).find("is writable by others (mode 777) and not a sticky directory of root's"),
            std::string::npos);
  if (geteuid() != 0) GTEST_SKIP() << "giving a directory to another user needs root";
  fs::create_directories(base_ / "theirs");
  ::chmod((base_ / "theirs").c_str(), 0755);
  ASSERT_EQ(::chown((base_ / "theirs").c_str(), 65534, 65534), 0);
  fs::create_directories(base_ / "theirs" / "cache");
  ::chmod((base_ / "theirs" / "cache").c_str(), 0700);
  const std::string error = error_of([&] { Cache((base_ / "theirs" / "cache").string()); });
  EXPECT_NE(error.find("is owned by uid 65534 (neither root nor this user"), std::string::npos)
      << error;
}

TEST_F(CacheSecurity, TheRootSystemDirectoriesAndSymlinksAreRefused) {
  EXPECT_NE(error_of([] { Cache("/"); }).find("the root directory is never a cache"),
            std::string::npos);
  if (geteuid() == 0) {
    const std::string error = error_of([] { Cache("/usr"); });
    EXPECT_NE(error.find("is a system directory"), std::string::npos) << error;
  }
  fs::create_directories(base_ / "target");
  ::chmod((base_ / "target").c_str(), 0700);
  fs::create_directory_symlink(base_ / "target", dir_);
  for (const std::string& spelling : {dir_.string(), dir_.string() + "/", dir_.string() + "//"})
    EXPECT_NE(error_of([&] { Cache{spelling}; }).find("not a directory (a symlink"),
              std::string::npos)
        << spelling << ": " << error_of([&] { Cache{spelling}; });
}

// H3's cache form: a FIFO or a symlink planted at an entry's name is a miss, at once.
TEST_F(CacheSecurity, FifosAndSymlinksAtAnEntrysNameAreMisses) {
  Cache cache(dir_.string());
  const std::string key = content_key("fifo");
  ASSERT_EQ(::mkfifo(kernel_file(dir_, key).c_str(), 0600), 0);
  EXPECT_FALSE(cache.get(CacheKind::kernel, key));
  const std::string other = content_key("link");
  cache.put(CacheKind::kernel, other, "an object");
  fs::create_symlink(kernel_file(dir_, other), kernel_file(dir_, content_key("via link")));
  EXPECT_FALSE(cache.get(CacheKind::kernel, content_key("via link")));
}

// A write that fails (a directory where the entry goes) warns once and throws nothing; no
// temp file is left; the compiled function still runs.
TEST_F(CacheSecurity, AFailedWriteIsAWarningAndLeavesNothing) {
  Cache cache(dir_.string());
  const std::string key = content_key("blocked");
  fs::create_directories(kernel_file(dir_, key));
  ::testing::internal::CaptureStderr();
  EXPECT_NO_THROW(cache.put(CacheKind::kernel, key, "an object"));
  EXPECT_NO_THROW(cache.put(CacheKind::kernel, key, "an object"));
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("kiln: warning: cache: cannot rename"), std::string::npos) << err;
  EXPECT_EQ(err.find("warning", err.find("warning") + 1), std::string::npos) << "warned twice";
  for (const auto& e : fs::directory_iterator(dir_ / "kernels"))
    EXPECT_EQ(e.path().string().find(".tmp."), std::string::npos) << e.path();
}

// The secret is this user's private file; one others can read is refused, not used.
TEST_F(CacheSecurity, TheSecretIsPrivate) {
  { Cache cache(dir_.string()); }
  struct stat st {};
  ASSERT_EQ(::stat((dir_ / "secret").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(st.st_size, 32);
  ::chmod((dir_ / "secret").c_str(), 0644);
  EXPECT_NE(error_of([&] { Cache(dir_.string()); }).find("not this user's private file"),
            std::string::npos);
}

}  // namespace
}  // namespace kiln
