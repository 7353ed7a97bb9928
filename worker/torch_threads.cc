#include "worker/torch_threads.h"

#include <ATen/Parallel.h>

namespace vptq::worker {

TorchThreadsScope::TorchThreadsScope(int threads) {
  if (threads <= 0) return;
  const int current = at::get_num_threads();
  if (current == threads) return;
  previous_ = current;
  at::set_num_threads(threads);
}

TorchThreadsScope::~TorchThreadsScope() {
  if (previous_ > 0) at::set_num_threads(previous_);
}

int CurrentTorchThreads() { return at::get_num_threads(); }

}  // namespace vptq::worker
