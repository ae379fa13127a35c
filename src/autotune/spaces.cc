#include "autotune/spaces.h"

#include <algorithm>
#include <cmath>

#include "codegen/c_emitter.h"
#include "support/cpu_features.h"
#include "support/env.h"

namespace kiln {

std::vector<int64_t> thread_choices(const TuneTarget& target) {
  std::vector<int64_t> counts;
  for (int64_t t = 1; t < target.threads; t *= 2) counts.push_back(t);
  counts.push_back(target.threads);
  return counts;
}

TuneTarget host_tune_target() {
  TuneTarget t;
  t.threads = usable_cpus();
  for (int w : cpu_vector_widths()) t.vector_widths.push_back(w);
  return t;
}

int64_t work_per_element(const LoopKernel& k) {
  if (k.kind == LoopKernel::Kind::Foreach) {
    int64_t most = 1;
    for (const LoopKernel& part : k.parts) most = std::max(most, work_per_element(part));
    return most;
  }
  std::vector<const Expr*> roots;
  for (const ReducePhase& ph : k.phases) roots.push_back(ph.value.get());
  for (const Store& st : k.stores) roots.push_back(st.value.get());
  int64_t work = 0;
  visit_nodes(roots, [&](const Expr& x) {
    if (x.kind() == Expr::Kind::Load) {
      work += is_constant_load(x) ? 0 : 1;
    } else if (x.kind() == Expr::Kind::Apply) {
      work += is_transcendental(x.apply().op) ? kTranscendentalWork : 1;
    }
  });
  return std::max<int64_t>(work + static_cast<int64_t>(k.stores.size()), 1);
}

const std::vector<int64_t>& grain_choices() {
  static const std::vector<int64_t> grains = {256, 512, 2048, 8192, kDefaultGrain, 131072};
  return grains;
}

int64_t default_grain(const LoopKernel& k) {
  const double want = static_cast<double>(kParallelWork) / static_cast<double>(work_per_element(k));
  int64_t best = grain_choices().front();
  for (int64_t g : grain_choices())
    if (std::abs(std::log(static_cast<double>(g) / want)) <
        std::abs(std::log(static_cast<double>(best) / want)))
      best = g;
  return best;
}

TuneSpace tuning_space(const LoopKernel& k, const TuneTarget& target) {
  TuneSpace space;
  if (target.threads > 1) {
    space.fields.push_back({"THREADS", thread_choices(target)});
    space.defaults["THREADS"] = 0;  // every thread OpenMP has
    space.candidates.push_back({{"THREADS", 1}});
    space.fields.push_back({"GRAIN", grain_choices()});
    const int64_t grain = default_grain(k);
    space.defaults["GRAIN"] = grain;
    space.candidates.push_back({{"GRAIN", grain >= 8192 ? 2048 : kDefaultGrain}});
  }
  space.fields.push_back({"VEC", target.vector_widths});
  space.defaults["VEC"] = 0;              // the toolchain's: preferred_vector_width()
  for (int64_t w : target.vector_widths)  // the narrower ones are worth a try too
    if (w != preferred_vector_width()) space.candidates.push_back({{"VEC", w}});
  if (k.kind == LoopKernel::Kind::Row && k.columns) {
    space.fields.push_back({"BLOCK", {32, 64, 128, 256, 512, 1024}});
    space.defaults["BLOCK"] = 256;
    space.candidates.push_back({{"BLOCK", 64}});
    space.candidates.push_back({{"BLOCK", 1024}});
  } else if (k.kind == LoopKernel::Kind::Row && row_streams_inputs(k)) {
    space.fields.push_back({"CHUNK", {64, 128, 256, 512, 1024, 2048}});
    space.defaults["CHUNK"] = 256;
    space.candidates.push_back({{"CHUNK", 64}});
    space.candidates.push_back({{"CHUNK", 1024}});
  }
  return space;
}

TuneSpace gemm_tuning_space(const TuneTarget& target) {
  TuneSpace space;
  space.fields.push_back({"IMPL", {0, 1}});
  space.fields.push_back({"BM", {8, 16, 32, 64}});
  space.fields.push_back({"BN", {32, 64, 128, 256}});
  space.fields.push_back({"BK", {64, 128, 256, 512}});
  space.defaults = {{"IMPL", 0}, {"BM", 16}, {"BN", 128}, {"BK", 256}};
  if (target.threads > 1) {
    space.fields.push_back({"THREADS", thread_choices(target)});
    space.defaults["THREADS"] = 0;
  }
  space.fields.push_back({"VEC", target.vector_widths});
  space.defaults["VEC"] = 0;
  space.candidates = {{{"IMPL", 1}},
                      {{"IMPL", 1}, {"BM", 32}, {"BN", 64}},
                      {{"IMPL", 1}, {"BM", 8}, {"BN", 256}, {"BK", 512}}};
  return space;
}

TuneSpace without_thread_fields(const TuneSpace& space) {
  auto threads_field = [](const std::string& name) { return name == "THREADS" || name == "GRAIN"; };
  TuneSpace out;
  out.defaults = space.defaults;
  for (const TuneField& f : space.fields)
    if (!threads_field(f.name)) out.fields.push_back(f);
  for (const KernelConfig& c : space.candidates)
    if (std::none_of(c.begin(), c.end(), [&](const auto& kv) { return threads_field(kv.first); }))
      out.candidates.push_back(c);
  return out;
}

}  // namespace kiln
