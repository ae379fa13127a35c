// Replaying a repro file (observe/repro.h): its graph compiled with the recorded options
// and run on its inputs, against the eager interpreter; what `kiln repro FILE` reports.
#pragma once

#include <string>

#include "observe/repro.h"

namespace kiln {

struct ReproOutcome {
  int exit_code = 0;   // 0: compiled equals eager; 1: mismatch; 2: an error (compile, run)
  std::string report;  // what ran and what differed, for people
};
ReproOutcome run_repro(const Repro& repro);

}  // namespace kiln
