#include "trace/tracer.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <map>

#include "eager/interpreter.h"
#include "graph/infer.h"
#include "kiln/error.h"
#include "tensor/tensor_impl.h"

namespace kiln {

namespace {
std::atomic<uint64_t> g_next_session{1};

bool overlaps_itself(const Shape& sizes, const Shape& strides) {
  for (size_t d = 0; d < sizes.size(); ++d)
    if (strides[d] == 0 && sizes[d] > 1) return true;
  return false;
}
}  // namespace

Tracer::Tracer(std::string graph_name, bool freeze_captured)
    : name_(std::move(graph_name)),
      freeze_captured_(freeze_captured),
      session_(g_next_session.fetch_add(1)),
      first_serial_(Storage::next_serial_peek()) {}

int32_t Tracer::add_value(Kind kind, size_t index, TensorType type) {
  values_.push_back({kind, index, std::move(type)});
  return static_cast<int32_t>(values_.size() - 1);
}

int32_t Tracer::new_slot(int32_t value, std::string what) {
  slots_.push_back({value, value, 0, -1, false, std::move(what)});
  return static_cast<int32_t>(slots_.size() - 1);
}

int32_t Tracer::new_alias(int32_t slot, std::vector<ViewStep> steps, int32_t value) {
  aliases_.push_back({slot, std::move(steps), value, slots_[static_cast<size_t>(slot)].generation});
  return static_cast<int32_t>(aliases_.size() - 1);
}

std::vector<Tensor> Tracer::add_inputs(const std::vector<Tensor>& examples) {
  std::map<int64_t, int32_t> symbol_of_size;
  std::vector<Tensor> traced;
  for (size_t i = 0; i < examples.size(); ++i) {
    const Tensor& ex = examples[i];
    if (!ex.defined()) throw Error(fmt::format("compile: argument tensor {} is undefined", i));
    if (ex.impl()->is_traced())
      throw Error("compile: a traced tensor was passed into a compiled function");
    if (!device_known_) {
      device_ = ex.device();
      device_known_ = true;
    }
    TensorType type{ex.dtype(), const_shape(ex.sizes())};
    for (int64_t d = 0; d < ex.dim(); ++d) {
      if (!(ex.impl()->dynamic_dims >> d & 1)) continue;
      int64_t size = ex.sizes()[d];
      auto [it, added] = symbol_of_size.emplace(size, static_cast<int32_t>(bindings_.size()));
      if (added) {
        bindings_.push_back(size);
        symbol_origins_.push_back(fmt::format("dim {} of input {}", d, i));
      }
      type.shape[d] = Dim::symbol(it->second);
    }
    int32_t value = add_value(Kind::Input, num_inputs_++, type);
    int32_t slot = new_slot(value, fmt::format("input {}", i));
    slots_.back().input = static_cast<int32_t>(i);
    int32_t alias = new_alias(slot, {}, value);
    input_aliases_.push_back(alias);
    // The example's strides: views alias (or copy) as they would eagerly.
    traced.push_back(traced_tensor(value, alias, &ex.strides(), ex.offset()));
    // A leaf that requires grad stays one: autograd records the traced ops over it.
    traced.back().impl()->requires_grad = ex.impl()->requires_grad;
  }
  return traced;
}

Tensor Tracer::add_scalar_input() {
  if (!captured_.empty()) throw Error("compile: graph scalars must be added before captures");
  size_t index = num_inputs_++;
  int32_t value = add_value(Kind::Input, index, {DType::f64, {}});
  int32_t alias = new_alias(new_slot(value, fmt::format("graph scalar in{}", index)), {}, value);
  return traced_tensor(value, alias, nullptr, 0);
}

Tensor Tracer::add_tangent_input(const TensorType& type) {
  int32_t value = add_value(Kind::Tangent, num_tangents_++, type);
  int32_t alias = new_alias(new_slot(value, "a tangent"), {}, value);
  return traced_tensor(value, alias, nullptr, 0);
}

Tensor Tracer::traced_tensor(int32_t value, int32_t alias, const Shape* strides, int64_t offset) {
  const TensorType& type = values_[static_cast<size_t>(value)].type;
  auto impl = std::make_shared<TensorImpl>();
  for (const Dim& d : type.shape) impl->sizes.push_back(d.eval(bindings_));
  impl->strides = strides ? *strides : contiguous_strides(impl->sizes);
  impl->offset = offset;
  impl->dtype = type.dtype;
  impl->device = device_;
  impl->trace_value = value;
  impl->trace_alias = alias;
  impl->trace_session = session_;
  return Tensor(std::move(impl));
}

int32_t Tracer::alias_of(const Tensor& t) {
  const TensorImpl* impl = t.impl();
  if (impl->is_traced()) return impl->trace_alias;
  auto it = real_aliases_.find(impl);
  if (it != real_aliases_.end()) return it->second;
  // Another TensorImpl of a tensor seen already (what autograd saved of it, detach()): the
  // same value, not a second capture.
  for (const Tensor& seen : real_seen_) {
    const TensorImpl& s = *seen.impl();
    if (s.storage == impl->storage && s.sizes == impl->sizes && s.strides == impl->strides &&
        s.offset == impl->offset && s.dtype == impl->dtype) {
      int32_t alias = real_aliases_.at(&s);
      real_aliases_.emplace(impl, alias);
      real_seen_.push_back(t);
      return alias;
    }
  }
  if (!device_known_) {
    device_ = t.device();
    device_known_ = true;
  }
  TensorType type{t.dtype(), const_shape(t.sizes())};
  int32_t value;
  int32_t slot;
  if (impl->storage->serial() >= first_serial_ || freeze_captured_) {
    // Made during the trace (a factory's result), or frozen: a constant. Its contiguous
    // copy is taken now; a frozen tensor's version is guarded.
    bool frozen = impl->storage->serial() < first_serial_;
    std::string name = fmt::format("c{}", constants_.size());
    if (frozen) frozen_.push_back({impl->storage, impl->storage->version(), name});
    value = add_value(Kind::Constant, constants_.size(), type);
    constants_.push_back(contiguous_eager(t));
    slot = new_slot(value, fmt::format("constant {}", name));
    slots_.back().frozen = frozen;
  } else {
    value = add_value(Kind::Captured, captured_.size(), type);
    slot = new_slot(value, fmt::format("captured tensor {}", captured_.size()));
    slots_.back().input = static_cast<int32_t>(num_inputs_ + captured_.size());
    captured_.push_back(t);
  }
  int32_t alias = new_alias(slot, {}, value);
  real_aliases_.emplace(impl, alias);
  real_seen_.push_back(t);
  return alias;
}

int32_t Tracer::value_of(const Tensor& t) {
  Alias& a = aliases_[static_cast<size_t>(alias_of(t))];
  const Slot& s = slots_[static_cast<size_t>(a.slot)];
  if (a.generation != s.generation) {  // the slot was written since: derive the view anew
    int32_t v = s.value;
    for (const ViewStep& step : a.steps) v = emit(step.op, {v}, step.attrs);
    a.value = v;
    a.generation = s.generation;
  }
  return a.value;
}

int32_t Tracer::emit(Op op, std::vector<int32_t> inputs, const Attrs& attrs) {
  std::vector<const TensorType*> types;
  for (int32_t v : inputs) types.push_back(&values_[static_cast<size_t>(v)].type);
  TensorType type = infer_type(op, attrs, types);
  int32_t value = add_value(Kind::Node, nodes_.size(), std::move(type));
  nodes_.push_back({op, std::move(inputs), attrs, value});
  return value;
}

Tensor Tracer::record(Op op, const std::vector<Tensor>& inputs, const Attrs& attrs) {
  std::vector<int32_t> ins;
  for (const Tensor& t : inputs) ins.push_back(value_of(t));
  int32_t value = emit(op, ins, attrs);
  if (is_view(op_info(op).rule)) {
    // A view aliases its input's slot exactly where the eager view would.
    const TensorImpl& in = *inputs[0].impl();
    Shape out_sizes;
    for (const Dim& d : values_[static_cast<size_t>(value)].type.shape)
      out_sizes.push_back(d.eval(bindings_));
    std::optional<ViewGeometry> view = view_geometry(op, bind_attrs(attrs, bindings_),
                                                     {in.sizes, in.strides, in.offset}, out_sizes);
    if (view) {
      const Alias& base = aliases_[static_cast<size_t>(alias_of(inputs[0]))];
      std::vector<ViewStep> steps = base.steps;
      steps.push_back({op, attrs});
      int32_t alias = new_alias(base.slot, std::move(steps), value);
      return traced_tensor(value, alias, &view->strides, view->offset);
    }
  }
  int32_t alias = new_alias(new_slot(value, "a result"), {}, value);
  return traced_tensor(value, alias, nullptr, 0);
}

Tensor Tracer::copy(const Tensor& t) {
  int32_t value = value_of(t);
  int32_t alias = new_alias(new_slot(value, "a copy"), {}, value);
  return traced_tensor(value, alias, nullptr, 0);
}

int32_t Tracer::scatter(const ViewStep& step, int32_t base, int32_t written) {
  const TensorType& base_type = values_[static_cast<size_t>(base)].type;
  Attrs a;
  switch (step.op) {
    case Op::reshape:
      a.set("shape", base_type.shape);
      return emit(Op::reshape, {written}, a);
    case Op::permute: {
      Shape dims = step.attrs.get_ints("dims");
      Shape inverse(dims.size());
      for (size_t i = 0; i < dims.size(); ++i)
        inverse[static_cast<size_t>(normalize_dim(dims[i], static_cast<int64_t>(dims.size()),
                                                  "permute"))] = static_cast<int64_t>(i);
      a.set_ints("dims", inverse);
      return emit(Op::permute, {written}, a);
    }
    case Op::slice:
      return step.attrs.get_int("step", 1) == 1 ? scatter_slice(step, base, written)
                                                : scatter_strided_slice(step, base, written);
    case Op::expand:
      if (values_[static_cast<size_t>(written)].type.shape == base_type.shape) return written;
      throw Error(
          "compile: an in-place write to an expanded tensor (more than one element refers to "
          "one memory location); clone() it first");
    default:
      throw Error(fmt::format("{}: not a view op", op_name(step.op)));
  }
}

// A step-1 slice, of constant or symbolic bounds: the written value between the parts
// before and after it, each a slice of the base (a part whose length is not one Dim is an
// error, as that slice itself would be).
int32_t Tracer::scatter_slice(const ViewStep& step, int32_t base, int32_t written) {
  const int64_t dim = step.attrs.get_int("dim");
  const Dim size = values_[static_cast<size_t>(base)].type.shape[static_cast<size_t>(dim)];
  const Dim start = step.attrs.get_dim("start"), end = step.attrs.get_dim("end");
  std::vector<int32_t> pieces;
  auto part = [&](const Dim& from, const Dim& to) {
    if (from == to) return;
    slice_length(size, from, to, 1, [&](const std::string& why) {
      throw ShapeError(fmt::format(
          "compile: an in-place write through slice [{}, {}) of dim {} (size {}) leaves the "
          "part [{}, {}), which kiln cannot size: {}",
          start.to_string(), end.to_string(), dim, size.to_string(), from.to_string(),
          to.to_string(), why));
    });
    Attrs s;
    s.set("dim", dim).set_dim("start", from).set_dim("end", to).set("step", int64_t{1});
    pieces.push_back(emit(Op::slice, {base}, s));
  };
  part(Dim::constant(0), start);
  pieces.push_back(written);
  part(end, size);
  if (pieces.size() == 1) return written;
  Attrs c;
  c.set("dim", dim);
  return emit(Op::cat, pieces, c);
}

// A slice with step k > 1 (constant bounds of a constant dim: infer allows no other).
// Elements start + j*k (j < m) are written; the k - 1 after each stay. Whole groups of k
// are a [groups, k] reshape whose column 0 is the written value; a last written element
// without k - 1 elements after it is a piece of its own.
int32_t Tracer::scatter_strided_slice(const ViewStep& step, int32_t base, int32_t written) {
  const int64_t dim = step.attrs.get_int("dim"), k = step.attrs.get_int("step");
  const int64_t start = step.attrs.get_int("start");
  const int64_t size =
      values_[static_cast<size_t>(base)].type.shape[static_cast<size_t>(dim)].coeff;
  const int64_t m = values_[static_cast<size_t>(written)]
                        .type.shape[static_cast<size_t>(dim)]
                        .coeff;  // elements written along dim
  auto slice = [&](int32_t of, int64_t d, int64_t from, int64_t to) {
    Attrs s;
    s.set("dim", d).set("start", from).set("end", to).set("step", int64_t{1});
    return emit(Op::slice, {of}, s);
  };
  // `of` with its dims dim .. dim + replaced - 1 replaced by `dim_sizes`.
  auto reshaped = [&](int32_t of, int64_t replaced, std::vector<int64_t> dim_sizes) {
    SymShape shape = values_[static_cast<size_t>(of)].type.shape;
    shape.erase(shape.begin() + dim, shape.begin() + dim + replaced);
    for (size_t j = 0; j < dim_sizes.size(); ++j)
      shape.insert(shape.begin() + dim + static_cast<int64_t>(j), Dim::constant(dim_sizes[j]));
    Attrs r;
    r.set("shape", shape);
    return emit(Op::reshape, {of}, r);
  };
  auto cat = [&](const std::vector<int32_t>& pieces, int64_t d) {
    if (pieces.size() == 1) return pieces[0];
    Attrs c;
    c.set("dim", d);
    return emit(Op::cat, pieces, c);
  };
  std::vector<int32_t> pieces;
  if (start > 0) pieces.push_back(slice(base, dim, 0, start));
  const int64_t groups = m == 0 ? 0 : std::min(m, (size - start) / k);
  if (groups > 0) {
    int32_t region = reshaped(slice(base, dim, start, start + groups * k), 1, {groups, k});
    int32_t column =
        reshaped(groups == m ? written : slice(written, dim, 0, groups), 1, {groups, 1});
    pieces.push_back(
        reshaped(cat({column, slice(region, dim + 1, 1, k)}, dim + 1), 2, {groups * k}));
  }
  int64_t done = start + groups * k;
  if (groups < m) {  // the last element, at done: size - done < k
    pieces.push_back(slice(written, dim, groups, m));
    ++done;
  }
  if (done < size) pieces.push_back(slice(base, dim, done, size));
  if (pieces.empty()) return base;
  return cat(pieces, dim);
}

void Tracer::assign(const Tensor& self, const Tensor& value) {
  int32_t alias_id = alias_of(self);
  int32_t v = value_of(value);
  const TensorImpl& impl = *self.impl();
  if (overlaps_itself(impl.sizes, impl.strides))
    throw Error(
        "in-place op: more than one element of the written-to tensor refers to a single memory "
        "location (an expanded tensor); clone() it first");
  Alias& a = aliases_[static_cast<size_t>(alias_id)];
  Slot& s = slots_[static_cast<size_t>(a.slot)];
  if (s.frozen)
    throw Error(fmt::format(
        "compile: the function writes to {}, a captured tensor that freeze_captured folded "
        "into the graph; do not freeze tensors the function mutates",
        s.what));
  const TensorType& self_type = values_[static_cast<size_t>(value_of(self))].type;
  const TensorType& value_type = values_[static_cast<size_t>(v)].type;
  if (!(self_type == value_type))
    throw Error(fmt::format("in-place op: the value {} does not match the tensor {}",
                            type_string(value_type), type_string(self_type)));
  // Scatter through the inverse of each view step, innermost first.
  std::vector<int32_t> levels{s.value};
  for (size_t i = 0; i + 1 < a.steps.size(); ++i)
    levels.push_back(emit(a.steps[i].op, {levels.back()}, a.steps[i].attrs));
  int32_t written = v;
  for (size_t i = a.steps.size(); i-- > 0;) written = scatter(a.steps[i], levels[i], written);
  s.value = written;
  ++s.generation;
  a.value = v;
  a.generation = s.generation;
  if (impl.is_traced()) self.impl()->trace_value = v;  // a real tensor stays real
}

void Tracer::depends_on_values(const Tensor& captured, const char* why) {
  const std::shared_ptr<Storage>& storage = captured.impl()->storage;
  frozen_.push_back({storage, storage->version(), fmt::format("{} ({})", frozen_.size(), why)});
}

Tensor Tracer::rng_draw(int64_t* draw) {
  if (!rng_state_.defined()) {
    int32_t value = add_value(Kind::Rng, 0, {DType::i64, const_shape({2})});
    rng_state_ = traced_tensor(value, new_alias(new_slot(value, "the generator state"), {}, value),
                               nullptr, 0);
  }
  *draw = rng_draws_++;
  return rng_state_;
}

void Tracer::specialize_scalars(const std::vector<int32_t>& scalars) {
  specialized_scalars_.insert(specialized_scalars_.end(), scalars.begin(), scalars.end());
}

std::string Tracer::describe_symbol(int32_t sym) const {
  return sym >= 0 && static_cast<size_t>(sym) < symbol_origins_.size()
             ? symbol_origins_[static_cast<size_t>(sym)]
             : fmt::format("unknown symbol s{}", sym);
}

const SymShape& Tracer::symbolic_shape(const Tensor& traced) const {
  return values_.at(static_cast<size_t>(traced.impl()->trace_value)).type.shape;
}

TraceResult Tracer::finish(const std::vector<Tensor>& outputs) {
  TraceResult result;
  std::vector<int32_t> out_values;
  for (const Tensor& t : outputs) {
    if (!t.defined()) throw Error("compile: the traced function returned an undefined tensor");
    if (t.impl()->is_traced() && t.impl()->trace_session != session_)
      throw Error("compile: the traced function returned a tensor from another trace");
    int32_t alias = alias_of(t);
    const Alias& a = aliases_[static_cast<size_t>(alias)];
    const Slot& s = slots_[static_cast<size_t>(a.slot)];
    // Only a slot's own root alias has no view steps: this is the input tensor itself.
    result.returns_input.push_back(a.steps.empty() ? s.input : -1);
    out_values.push_back(value_of(t));
  }
  for (const Slot& s : slots_) {
    if (s.input < 0 || s.value == s.initial) continue;
    result.write_backs.push_back({out_values.size(), static_cast<size_t>(s.input)});
    out_values.push_back(s.value);
  }
  GraphBuilder builder(name_);
  builder.use_symbols(static_cast<int32_t>(bindings_.size()));
  size_t rng_inputs = rng_draws_ > 0 ? 1 : 0;
  size_t num_graph_inputs = num_inputs_ + captured_.size() + rng_inputs + num_tangents_;
  auto graph_id = [&](int32_t v) {
    const Value& value = values_[static_cast<size_t>(v)];
    size_t base = value.kind == Kind::Input      ? 0
                  : value.kind == Kind::Captured ? num_inputs_
                  : value.kind == Kind::Rng      ? num_inputs_ + captured_.size()
                  : value.kind == Kind::Tangent  ? num_inputs_ + captured_.size() + rng_inputs
                  : value.kind == Kind::Constant ? num_graph_inputs
                                                 : num_graph_inputs + constants_.size();
    return static_cast<ValueId>(base + value.index);
  };
  for (const Value& v : values_)
    if (v.kind == Kind::Input) builder.add_input(fmt::format("in{}", v.index), v.type);
  for (const Value& v : values_)
    if (v.kind == Kind::Captured) builder.add_input(fmt::format("captured{}", v.index), v.type);
  for (const Value& v : values_)
    if (v.kind == Kind::Rng) builder.add_input("rng", v.type);
  for (const Value& v : values_)
    if (v.kind == Kind::Tangent) builder.add_input(fmt::format("tangent{}", v.index), v.type);
  for (size_t c = 0; c < constants_.size(); ++c)
    builder.add_constant(fmt::format("c{}", c),
                         {constants_[c].dtype(), const_shape(constants_[c].sizes())},
                         constants_[c]);
  for (const PendingNode& node : nodes_) {  // typed as recorded: inferred once
    std::vector<ValueId> ins;
    for (int32_t v : node.inputs) ins.push_back(graph_id(v));
    builder.add_inferred_node(node.op, std::move(ins), node.attrs,
                              values_[static_cast<size_t>(node.value)].type);
  }
  std::vector<ValueId> outs;
  for (int32_t v : out_values) outs.push_back(graph_id(v));
  builder.set_outputs(outs);
  result.graph = builder.finish();
  result.graph.size_hints = bindings_;
  for (const Tensor& t : captured_) result.captured.push_back(t.impl_ptr());
  result.frozen = frozen_;
  result.rng_draws = rng_draws_;
  std::sort(specialized_scalars_.begin(), specialized_scalars_.end());
  specialized_scalars_.erase(std::unique(specialized_scalars_.begin(), specialized_scalars_.end()),
                             specialized_scalars_.end());
  result.specialized_scalars = specialized_scalars_;
  return result;
}

}  // namespace kiln
