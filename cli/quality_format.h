// The quality figures of a packed checkpoint as vptqctl prints them (eval,
// quantize): perplexity quantized vs original, KL, top-1, bits per weight.
//
//   PrintQualityReport(out, report);   // pipeline::QualityReport (eval)
//   PrintJobQuality(out, job.quality());  // vptq.v1.Quality (quantize)
//
// Pure formatting; thread-safe.
#pragma once

#include <ostream>

#include "vptq/v1/job.pb.h"
#include "worker/pipeline/quality_report.h"

namespace vptq::cli {

void PrintQualityReport(std::ostream& out, const pipeline::QualityReport& r);
void PrintJobQuality(std::ostream& out, const v1::Quality& q);

}  // namespace vptq::cli
