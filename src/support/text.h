// Small text helpers shared by the parsers of kiln's own formats (configs, spaces, wire
// fields, worker timings) and the readers of its files.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace kiln {

// The pieces of `text` between `separator`s; none for empty text ("a,,b" → a, "", b).
std::vector<std::string_view> split_text(std::string_view text, char separator);

// A whole file's bytes; Error naming `path` when it cannot be read.
std::string read_text_file(const std::string& path);

}  // namespace kiln
