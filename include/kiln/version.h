#pragma once

#include <string_view>

namespace kiln {

// "0.1.0"
std::string_view version();

}  // namespace kiln
