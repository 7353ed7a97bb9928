// Time source for the coordinator. Production code uses RealClock(); tests
// use FakeClock so lease expiry and retry backoff are tested without sleeping.
//
//   FakeClock clock(absl::FromUnixSeconds(1000));
//   Scheduler scheduler(&store, &clock, options);
//   clock.Advance(absl::Seconds(31));   // the 30 s lease is now stale
//   scheduler.Tick();
//
// Thread-safe.
#pragma once

#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace vptq::coordinator {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() const = 0;
};

// The process-wide wall clock (absl::Now()). Never null, never freed.
Clock* RealClock();

class FakeClock : public Clock {
 public:
  explicit FakeClock(absl::Time start = absl::FromUnixSeconds(1'700'000'000)) : now_(start) {}
  absl::Time Now() const override {
    absl::MutexLock lock(&mu_);
    return now_;
  }
  void Advance(absl::Duration d) {
    absl::MutexLock lock(&mu_);
    now_ += d;
  }
  void Set(absl::Time t) {
    absl::MutexLock lock(&mu_);
    now_ = t;
  }

 private:
  mutable absl::Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_);
};

inline int64_t ToUnixMs(absl::Time t) { return absl::ToUnixMillis(t); }
inline absl::Time FromUnixMs(int64_t ms) { return absl::FromUnixMillis(ms); }

}  // namespace vptq::coordinator
