#include "compile/shared_object.h"

#include <dlfcn.h>
#include <fmt/format.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "kiln/error.h"
#include "support/blas.h"

namespace kiln {

// RTLD_NODELETE: code stays mapped after the last owner lets go, since an OpenMP pool
// thread may still be returning through it.
namespace {

// A new private directory (0700) for one symlink; no state survives the call, so loads
// may run while the process exits.
std::string private_link_directory(const std::string& name) {
  const char* base = std::getenv("TMPDIR");
  std::string templ = fmt::format("{}/kiln-load-XXXXXX", base && *base ? base : "/tmp");
  if (!mkdtemp(templ.data()))
    throw Error(fmt::format("cannot load {}: mkdtemp {}: {}", name, templ, std::strerror(errno)));
  return templ;
}

}  // namespace

// The bytes go to an anonymous memory file; dlopen reaches it through a symlink of a name
// never used before (pid and a counter): glibc returns an already loaded object whose name matches,
// and with RTLD_NODELETE every object stays loaded, so a reused /proc/self/fd/N name would return
// an old object. The mapping keeps the memory file alive after its descriptor closes.
std::shared_ptr<SharedObject> SharedObject::load_bytes(std::string_view bytes,
                                                       const std::string& name) {
  static std::atomic<uint64_t> counter{0};
  int fd = memfd_create(name.c_str(), MFD_CLOEXEC);
  if (fd < 0)
    throw Error(fmt::format("cannot load {}: memfd_create: {}", name, std::strerror(errno)));
  for (size_t done = 0; done < bytes.size();) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ::close(fd);
      throw Error(fmt::format("cannot load {}: writing its image: {}", name, std::strerror(errno)));
    }
    done += static_cast<size_t>(n);
  }
  std::string dir = private_link_directory(name);
  std::string link = fmt::format("{}/{}-{}-{}", dir, getpid(), counter++, name);
  if (::symlink(fmt::format("/proc/self/fd/{}", fd).c_str(), link.c_str()) != 0) {
    ::close(fd);
    ::rmdir(dir.c_str());
    throw Error(fmt::format("cannot load {}: symlink {}: {}", name, link, std::strerror(errno)));
  }
  // Generated GEMM kernels call cblas_sgemm, which OpenBLAS (support/blas.h) puts in the
  // global scope once loaded. Where it cannot load, the kernels that need it fail below,
  // dlerror naming the missing symbol; the others load.
  try {
    blas();
  } catch (const Error&) {
  }
  void* handle = dlopen(link.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
  const char* why = handle ? nullptr : dlerror();
  ::unlink(link.c_str());
  ::rmdir(dir.c_str());
  ::close(fd);
  if (!handle) throw Error(fmt::format("cannot load {}: {}", name, why ? why : "dlopen failed"));
  return std::shared_ptr<SharedObject>(new SharedObject(handle, name));
}

SharedObject::~SharedObject() { dlclose(handle_); }

void* SharedObject::symbol(const std::string& name) const {
  dlerror();
  void* p = dlsym(handle_, name.c_str());
  if (!p) throw Error(fmt::format("{}: no symbol {}", name_, name));
  return p;
}

}  // namespace kiln
