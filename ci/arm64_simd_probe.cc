// Prints which Highway SIMD targets an aarch64 build compiles and which one the CPU plugin's
// dynamic dispatch picks on the CPU it runs on (under qemu-user: the CPU QEMU_CPU names).
// Built by ci/arm64.sh with the same Highway headers and -DHWY_* flags as backends/cpu, so
// HWY_TARGETS here equals the plugin's; the pick is the plugin's ChosenSimdTarget() rule (best
// usable bit).
#include <cstdint>
#include <cstdio>

#include "hwy/targets.h"

namespace {

void PrintTargets(const char* label, int64_t targets) {
  std::printf("%s:", label);
  for (int64_t bits = targets; bits != 0; bits &= bits - 1) {
    std::printf(" %s", hwy::TargetName(bits & -bits));
  }
  std::printf("\n");
}

}  // namespace

int main() {
  const int64_t compiled = HWY_TARGETS;
  const int64_t supported = hwy::SupportedTargets();
  const int64_t usable = compiled & supported;
  PrintTargets("hwy compiled targets", compiled);
  PrintTargets("hwy targets this CPU supports", supported);
  std::printf("hwy chosen target (what the CPU plugin dispatches to): %s\n",
              usable == 0 ? "none" : hwy::TargetName(usable & -usable));
  return usable == 0 ? 1 : 0;
}
