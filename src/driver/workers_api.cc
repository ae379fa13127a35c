// kiln/workers.h: the pool as the public API exposes it.
#include <fmt/format.h>

#include "driver/object_store.h"
#include "kiln/error.h"
#include "kiln/workers.h"
#include "support/env.h"
#include "worker/pool.h"

namespace kiln {

namespace {

bool is_c_identifier(const std::string& s) {
  if (s.empty() || std::isdigit(static_cast<unsigned char>(s[0]))) return false;
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) return false;
  return true;
}

}  // namespace

bool wait_pool_ready(double timeout_seconds, const CompileOptions& options) {
  ResolvedOptions r = resolve_options(options);
  return compile_pool(r.worker_start, r.compile_threads).wait_ready(timeout_seconds);
}

void shutdown_compile_workers() { shutdown_all_pools(); }

std::vector<PoolWorker> pool_status() {
  std::vector<PoolWorker> out;
  for (WorkerStart start : {WorkerStart::Subprocess, WorkerStart::Fork, WorkerStart::Spawn})
    for (bool idle : {false, true})
      for (const auto& [pool_start, status] : pool_statuses(start, idle))
        out.push_back({std::string(worker_start_name(pool_start)), status.slot, status.pid,
                       status.busy, status.jobs_done, status.failures});
  return out;
}

std::future<CompiledKernel> compile_source(const std::string& name, const std::string& language,
                                           const std::string& source,
                                           const CompileOptions& options) {
  if (language != "c")
    throw Error(
        fmt::format("compile_source({}): unknown language '{}' (accepted: c)", name, language));
  if (!is_c_identifier(name))
    throw Error(fmt::format("compile_source: '{}' is not a C function name", name));
  ResolvedOptions r = resolve_options(options);
  std::optional<Cache> cache = Cache::open();
  auto promise = std::make_shared<std::promise<CompiledKernel>>();
  std::future<CompiledKernel> result = promise->get_future();
  // The pool thread that ran the job loads its object, so the future is ready (and
  // wait_for works) as soon as the kernel is.
  Job job =
      encode(CompileUnitJob{name, source, ToolchainSpec{}, cache ? cache->root() : std::string()});
  job.name = fmt::format("compile_source {}", name);  // as the caller named it, in errors
  compile_pool(r.worker_start, r.compile_threads)
      .submit(std::move(job), [promise, name, cache](std::exception_ptr error, Fields reply) {
        try {
          if (error) std::rethrow_exception(error);
          ObjectUnit unit{name, "", ""};
          std::shared_ptr<KernelObject> object =
              load_object_from_reply(unit, decode_unit_reply(reply));
          void* address = object->symbol(name);
          promise->set_value(
              CompiledKernel(name, std::shared_ptr<void>(object, object.get()), address));
        } catch (...) {
          promise->set_exception(std::current_exception());
        }
      });
  return result;
}

}  // namespace kiln
