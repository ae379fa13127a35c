// kiln's build identity: a hash of its sources and compiler (cmake/BuildId.cmake), part of
// every cache key and checked in the worker handshake, so that no cache entry or worker of
// another build is ever used.
#pragma once

#include <string_view>

namespace kiln {

std::string_view build_id();

}  // namespace kiln
