// Small text helpers shared by the parsers of kiln's own formats (configs, spaces, wire
// fields, worker timings), the readers of its files, and messages.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace kiln {

// The pieces of `text` between `separator`s; none for empty text ("a,,b" → a, "", b).
std::vector<std::string_view> split_text(std::string_view text, char separator);

// A concrete shape as messages print it: "[2, 3]" (graph/dim.h prints symbolic ones).
std::string shape_string(const std::vector<int64_t>& shape);

// A whole file's bytes; Error naming `path` when it cannot be read.
std::string read_text_file(const std::string& path);

}  // namespace kiln
