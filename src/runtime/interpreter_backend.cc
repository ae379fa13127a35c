#include "eager/interpreter.h"
#include "runtime/executable.h"
#include "support/stats.h"

namespace kiln {

namespace {

class InterpreterExecutable final : public Executable {
 public:
  explicit InterpreterExecutable(std::shared_ptr<const Graph> graph) : graph_(std::move(graph)) {}
  std::vector<Tensor> run(const std::vector<Tensor>& inputs) override {
    bump(Stat::interpreter_runs);
    return interpret(*graph_, inputs);
  }
  std::string_view backend_name() const override { return "interpreter"; }

 private:
  std::shared_ptr<const Graph> graph_;
};

}  // namespace

std::unique_ptr<Executable> make_interpreter_executable(std::shared_ptr<const Graph> graph) {
  return std::make_unique<InterpreterExecutable>(std::move(graph));
}

std::unique_ptr<Executable> make_interpreter_executable(Graph graph) {
  return make_interpreter_executable(std::make_shared<const Graph>(std::move(graph)));
}

}  // namespace kiln
