// Anchors the shared torch precompiled header (cmake/VptqHelpers.cmake).
#include "cmake/torch_pch.h"
