// kiln's public API: include this one header.
#pragma once

#include "kiln/autograd.h"
#include "kiln/compile.h"
#include "kiln/dtype.h"
#include "kiln/error.h"
#include "kiln/load.h"
#include "kiln/memory.h"
#include "kiln/nn.h"
#include "kiln/ops.h"
#include "kiln/optim.h"
#include "kiln/profiler.h"
#include "kiln/safetensors.h"
#include "kiln/tensor.h"
#include "kiln/version.h"
#include "kiln/workers.h"
