// kiln's exceptions. Every error kiln raises derives from kiln::Error; its message names
// what was wrong and where (op, shapes, file:line:column, kernel, worker) so that a user
// can act on it without a debugger.
#pragma once

#include <stdexcept>
#include <string>

namespace kiln {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// A value, shape or dtype that an op cannot accept.
class ShapeError : public Error {
 public:
  using Error::Error;
};

// Text that does not parse: the message starts with file:line:column.
class ParseError : public Error {
 public:
  using Error::Error;
};

// A file (safetensors, graph text) that is malformed, truncated or lies about its contents.
class FormatError : public Error {
 public:
  using Error::Error;
};

// Generated source that a toolchain rejected; the message carries its diagnostics.
class CompileError : public Error {
 public:
  using Error::Error;
};

// A compile worker that died, hung or answered nonsense.
class WorkerError : public Error {
 public:
  using Error::Error;
};

}  // namespace kiln
