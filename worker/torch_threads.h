// The intra-op thread count libtorch uses on the calling thread, set for a
// scope and restored after it. at::set_num_threads changes the calling
// thread's OpenMP team size and the default of threads that start later;
// the worker sets it on the thread that runs a task.
//
//   { TorchThreadsScope t(4); RunQuantizeTask(...); }   // 4 threads inside
//
// n <= 0 leaves the count as it is. Not for concurrent use of one object.
#pragma once

namespace vptq::worker {

class TorchThreadsScope {
 public:
  explicit TorchThreadsScope(int threads);
  ~TorchThreadsScope();
  TorchThreadsScope(const TorchThreadsScope&) = delete;
  TorchThreadsScope& operator=(const TorchThreadsScope&) = delete;

 private:
  int previous_ = 0;  // 0: nothing to restore
};

// The count libtorch uses on this thread now.
int CurrentTorchThreads();

}  // namespace vptq::worker
