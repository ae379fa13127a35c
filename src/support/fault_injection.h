// KILN_INJECT_FAULT: faults injected on purpose, for the tests of fault handling and of the
// minifier. One value at a time:
//   compile_error    every unit's source fails to compile, with the compiler's diagnostics
//   crash            a compile worker aborts in the middle of a unit
//   benchmark_crash  a benchmark worker aborts in its job
//   lowering:OP      OP's generated code is off by one (an accuracy bug); OP must be a
//                    pointwise op that reaches code generation (checked by the compile
//                    pipeline, which knows the op set: driver/pipeline.cc)
//   slow_stage:NAME  every call served by background stage NAME (fast, optimized) also runs
//                    the eager interpreter twice and sleeps kSlowStageSeconds (read by the
//                    host when the stage lands), for the tests of promotion by measurement
//   slow_after_trial every background stage runs at its own speed until a trial promotes it,
//                    then as slow_stage does: a stage its trial misjudged, for the tests of
//                    AsyncProgressive's final recheck against the eager interpreter
//   slow_threads     every call of a compiled CPU kernel on its tuned threads (not on one)
//                    takes kSlowThreadsSeconds longer (read when the executable is made), for
//                    the tests of the thread choice (runtime/thread_choice.h)
#pragma once

#include <string>

namespace kiln {

struct InjectedFault {
  enum class Kind {
    none,
    compile_error,
    crash,
    benchmark_crash,
    lowering,
    slow_stage,
    slow_after_trial,
    slow_threads
  };
  Kind kind = Kind::none;
  std::string op;  // for lowering: the op's name, as the variable spells it; for slow_stage:
                   // the stage's
};

constexpr double kSlowStageSeconds = 0.05;
constexpr double kSlowThreadsSeconds = 0.002;

// The variable, parsed on every call (tests set it per process or per command). An unknown
// value is an Error naming the variable and the accepted values.
InjectedFault injected_fault();

}  // namespace kiln
