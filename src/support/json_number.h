// Integers read from JSON that may be hostile (repros, plans, cache entries): nlohmann's
// get<I>() converts a float such as 2e43 with undefined behaviour and wraps an integer out
// of I's range. These check first, and throw nlohmann::json::type_error, which every reader
// already catches and reports with its source.
#pragma once

#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <type_traits>
#include <vector>

namespace kiln {

template <class I>
I json_integer(const nlohmann::json& v) {
  static_assert(std::is_integral_v<I> && !std::is_same_v<I, bool>);
  using Limits = std::numeric_limits<I>;
  if (v.is_number_unsigned()) {
    uint64_t u = v.get<uint64_t>();
    if (u <= static_cast<uint64_t>(Limits::max())) return static_cast<I>(u);
  } else if (v.is_number_integer()) {
    int64_t s = v.get<int64_t>();
    bool fits =
        std::is_signed_v<I>
            ? s >= static_cast<int64_t>(Limits::min()) && s <= static_cast<int64_t>(Limits::max())
            : s >= 0 && static_cast<uint64_t>(s) <= static_cast<uint64_t>(Limits::max());
    if (fits) return static_cast<I>(s);
  }
  throw nlohmann::json::type_error::create(
      302,
      "expected an integer of at most " + std::to_string(Limits::digits) + " bits, got " + v.dump(),
      &v);
}

template <class I>
std::vector<I> json_integers(const nlohmann::json& v) {
  if (!v.is_array())
    throw nlohmann::json::type_error::create(302, "expected an array of integers, got " + v.dump(),
                                             &v);
  std::vector<I> out;
  out.reserve(v.size());
  for (const nlohmann::json& e : v) out.push_back(json_integer<I>(e));
  return out;
}

}  // namespace kiln
