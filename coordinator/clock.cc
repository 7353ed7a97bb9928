#include "coordinator/clock.h"

namespace vptq::coordinator {
namespace {

class WallClock : public Clock {
 public:
  absl::Time Now() const override { return absl::Now(); }
};

}  // namespace

Clock* RealClock() {
  static WallClock* const clock = new WallClock();
  return clock;
}

}  // namespace vptq::coordinator
