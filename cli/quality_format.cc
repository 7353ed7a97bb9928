#include "cli/quality_format.h"

#include "absl/strings/str_format.h"

namespace vptq::cli {

void PrintQualityReport(std::ostream& out, const pipeline::QualityReport& r) {
  out << absl::StrFormat("evaluated %d sequences x %d tokens (%d predictions) in %.1f s\n",
                         r.sequences, r.sequence_length, r.tokens, r.seconds);
  out << absl::StrFormat("  perplexity       %.4f quantized, %.4f original (%+.2f%%)\n",
                         r.perplexity, r.perplexity_original,
                         r.perplexity_original > 0
                             ? 100.0 * (r.perplexity / r.perplexity_original - 1.0)
                             : 0.0);
  out << absl::StrFormat("  KL divergence    %.5f nats/token (original || quantized)\n",
                         r.kl_divergence);
  out << absl::StrFormat("  top-1 agreement  %.2f%%\n", 100.0 * r.top1_agreement);
  out << absl::StrFormat(
      "  bits per weight  %.3f whole file; %.3f for the %d quantized linears (%.3f as stored)\n",
      r.bpw_file, r.bpw_linears, r.quantized_linears, r.bpw_linears_stored);
}

void PrintJobQuality(std::ostream& out, const v1::Quality& q) {
  if (q.bits_per_weight_linears() > 0) {
    out << absl::StrFormat("  bits per weight  %.3f over the quantized linears; %.3f whole file "
                           "(embeddings, norms and lm_head included)\n",
                           q.bits_per_weight_linears(), q.bits_per_weight());
  } else if (q.bits_per_weight() > 0) {
    out << absl::StrFormat("  bits per weight  %.3f (whole model, embeddings and lm_head included)\n",
                           q.bits_per_weight());
  }
  if (q.evaluated()) {
    out << absl::StrFormat("  perplexity       %.4f quantized, %.4f original (%+.2f%%)\n",
                           q.perplexity(), q.perplexity_original(),
                           q.perplexity_original() > 0
                               ? 100.0 * (q.perplexity() / q.perplexity_original() - 1.0)
                               : 0.0);
    out << absl::StrFormat("  KL divergence    %.5f nats/token\n", q.kl_divergence());
    out << absl::StrFormat("  top-1 agreement  %.2f%%\n", 100.0 * q.top1_agreement());
  }
  if (q.mean_proxy_loss() > 0) {
    out << absl::StrFormat("  proxy loss       %.5f mean, %.5f max over the linears\n",
                           q.mean_proxy_loss(), q.max_proxy_loss());
  }
}

}  // namespace vptq::cli
