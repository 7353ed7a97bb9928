// Precompiled header for torch-using targets (see cmake/VptqHelpers.cmake).
#pragma once
#include <torch/torch.h>
