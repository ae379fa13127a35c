// The source files kernels are named by in profiles and traces (kernel_file, kernel_hash):
// each translation unit's source, written once as <cache root>/sources/<hash>.c, or under
// a private per-user directory in the temp dir when caches are off. The hash is the
// XXH3-128 of the file's content, so a reader can check that the file is the one that ran.
#pragma once

#include <string>

namespace kiln {

struct KernelFile {
  std::string path;
  std::string hash;
};

// Writes the file if it does not exist yet (temp file + rename); an unwritable directory
// leaves `path` empty rather than failing the compile.
KernelFile kernel_source_file(const std::string& source);

}  // namespace kiln
