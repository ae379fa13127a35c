// Files kiln reads and writes (support/files.h): only regular files of a bounded size are
// read, without blocking on a FIFO; writes never follow a planted symlink.
#include "support/files.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "kiln/error.h"
#include "support/compare.h"

namespace kiln {
namespace {

namespace fs = std::filesystem;
using testing::error_of;

class Files : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = make_private_temp_directory("kiln-files-test");
    struct stat st {};
    ASSERT_EQ(::stat(dir_.c_str(), &st), 0);
    ASSERT_EQ(st.st_mode & 07777, 0700u);  // mkdtemp's: only this user enters it
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return dir_ + "/" + name; }
  std::string dir_;
};

TEST_F(Files, OnlyRegularFilesWithinTheirBoundAreRead) {
  std::ofstream(path("a.txt")) << "twelve bytes";
  EXPECT_EQ(read_regular_file(path("a.txt"), 12), "twelve bytes");
  EXPECT_EQ(error_of([&] { read_regular_file(path("a.txt"), 11); }),
            path("a.txt") + ": cannot read: 12 bytes, larger than the 11 bytes accepted");
  ASSERT_EQ(::mkfifo(path("fifo").c_str(), 0600), 0);
  EXPECT_EQ(error_of([&] { read_regular_file(path("fifo"), 100); }),
            path("fifo") + ": cannot read: a FIFO, not a regular file");
  EXPECT_EQ(error_of([&] { read_regular_file(dir_, 100); }),
            dir_ + ": cannot read: a directory, not a regular file");
  EXPECT_EQ(error_of([&] { read_regular_file("/dev/zero", 100); }),
            "/dev/zero: cannot read: a character device, not a regular file");
  EXPECT_NE(error_of([&] { read_regular_file(path("missing"), 100); }).find("cannot open"),
            std::string::npos);
}

// S3: a symlink planted where the temp file goes is never written through; the file it
// points at keeps its bytes.
TEST_F(Files, AtomicWritesNeverFollowAPlantedSymlink) {
  std::ofstream(path("target")) << "root's file";
  // The temp name write_file_atomically uses first in this process: PATH.tmp.PID.N, with N
  // counting from 0; plant a symlink at each of the first few.
  for (int n = 0; n < 8; ++n)
    fs::create_symlink(path("target"), fmt::format("{}.tmp.{}.{}", path("out"), getpid(), n));
  for (int n = 0; n < 8; ++n)
    EXPECT_NE(error_of([&] { write_file_atomically(path("out"), "replaced"); }).find("File exists"),
              std::string::npos);
  std::ifstream in(path("target"));
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), "root's file");
  EXPECT_FALSE(fs::exists(path("out")));
  write_file_atomically(path("out"), "written");  // the next name is free
  EXPECT_EQ(read_regular_file(path("out"), 100), "written");
  struct stat st {};
  ASSERT_EQ(::stat(path("out").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
}

}  // namespace
}  // namespace kiln
