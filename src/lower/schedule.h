// schedule_program: decides every kernel's Schedule (loop/schedule.h) for the device its
// program runs on, the last step of lowering. The choices are kiln's measured defaults
// (the reasons are beside each in schedule.cc); tuning then moves the config fields a
// kernel exposes (autotune/spaces.h), never the schedule's axes.
#pragma once

#include "loop/kernel.h"

namespace kiln {

void schedule_program(Program& program, Device device);

}  // namespace kiln
