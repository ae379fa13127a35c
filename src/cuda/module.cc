#include "cuda/module.h"

#include <fmt/format.h>

#include "cuda/driver.h"
#include "kiln/error.h"

namespace kiln::cuda {

std::shared_ptr<Module> Module::load_bytes(std::string_view cubin, const std::string& name) {
  // The driver reads an ELF image from an aligned buffer; the string's own storage may not be.
  std::string copy(cubin);
  CUmodule module = nullptr;
  check(driver().cuModuleLoadData(&module, copy.data()),
        fmt::format("loading CUDA module {}", name).c_str());
  return std::shared_ptr<Module>(new Module(module, name));
}

Module::~Module() {
  if (available()) driver().cuModuleUnload(static_cast<CUmodule>(handle_));
}

void* Module::symbol(const std::string& symbol) const {
  CUfunction fn = nullptr;
  check(driver().cuModuleGetFunction(&fn, static_cast<CUmodule>(handle_), symbol.c_str()),
        fmt::format("CUDA module {}: kernel {}", name_, symbol).c_str());
  return fn;
}

}  // namespace kiln::cuda
