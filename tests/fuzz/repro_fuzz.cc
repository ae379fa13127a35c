// libFuzzer target: repro files (observe/repro.h). Any bytes either read as a repro or
// raise kiln::Error naming the file; a repro that reads makes its inputs when they are
// tiny, or raises kiln::Error (strides and bindings that overflow were a crash).
#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <string>

#include "kiln/error.h"
#include "observe/repro.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = "/tmp/kiln-repro-fuzz-" + std::to_string(getpid()) + ".json";
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  try {
    kiln::Repro r = kiln::read_repro(path);
    int64_t elements = 1;
    for (int64_t b : r.bindings) elements = b > 0 && elements < (1 << 20) ? elements * b : elements;
    if (elements <= 4096) kiln::repro_inputs(r);
  } catch (const kiln::Error&) {
  }
  return 0;
}
