#!/usr/bin/env bash
# ARM64 (aarch64), the edge's main CPU: cross-builds the core, the CPU plugin and the unit,
# op-conformance and golden tests with Debian's cross toolchain, then runs them under qemu-user
# (ctest prefixes each test with qemu-aarch64 through CMAKE_CROSSCOMPILING_EMULATOR).
#
# Highway offers five aarch64 targets (NEON, SVE, SVE2, SVE_256, SVE2_128) and the CPU plugin
# compiles them all; it dispatches at run time, so the emulated CPU picks the path. The whole
# selection runs on QEMU_CPU=max (SVE2, 512-bit vectors); the SIMD-heavy tests run again on each
# CPU in TESSERA_ARM64_SIMD_CPUS (default cortex-a72 = NEON, max with 256-bit vectors =
# SVE_256), and the plugin's unit test alone on each CPU in TESSERA_ARM64_UNIT_CPUS (default
# a64fx = SVE, max with 128-bit vectors = SVE2_128), each only if its pick differs from every
# earlier run's. The target the plugin picks on each CPU is logged (ci/arm64_simd_probe.cc), and
# a CPU that does not pick the target TESSERA_ARM64_EXPECT lists for it fails the stage.
#
# Usage: bash ci/arm64.sh                 (ci/test.sh runs it as its arm64 stage)
# Env:   ARM64_BUILD_DIR (build/arm64), JOBS (nproc), TESSERA_ARM64_TIMEOUT (seconds for the
#        whole script, default 1500), TESSERA_ARM64_SIMD_CPUS and TESSERA_ARM64_UNIT_CPUS
#        (QEMU_CPU values, space-separated), TESSERA_ARM64_EXPECT (QEMU_CPU=target pairs)
# Needs: ci/install-deps.sh --arm64 (cross compiler, qemu-user, arm64 -dev packages).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${ARM64_BUILD_DIR:-build/arm64}
JOBS=${JOBS:-$(nproc)}
BUDGET=${TESSERA_ARM64_TIMEOUT:-1500}
SIMD_CPUS=${TESSERA_ARM64_SIMD_CPUS-cortex-a72 max,sve-default-vector-length=32}
UNIT_CPUS=${TESSERA_ARM64_UNIT_CPUS-a64fx max,sve-default-vector-length=16}
# What each CPU must pick: proves that the SVE paths are compiled in and chosen.
EXPECT=${TESSERA_ARM64_EXPECT-max=SVE2 cortex-a72=NEON a64fx=SVE \
max,sve-default-vector-length=32=SVE_256 max,sve-default-vector-length=16=SVE2_128}
T0=$(date +%s)

# Unit tests of the core and the CPU plugin's neighbours, the op-conformance suite and the golden
# tests. Left out: server/HTTP, hub (network), CLI and install tests (they drive host tools), and
# python-driven references; they test no ARM-specific code.
TESTS_RE='^(core_.*|tessera_model_io_test|tessera_quantize_test|backend_common_test|cpu_backend_test|plugin_loader_test|executor_test|sampler_test|tokenizer_components_test|jinja_test|quant_accuracy_test|op_conformance_test|conformance_reference_test|text_golden_test|tokenizer_golden_test|jinja_golden_test|embedding_golden_test)$'
# The tests whose time goes into the CPU plugin's SIMD kernels: rerun on every SIMD_CPUS entry.
SIMD_RE='^(cpu_backend_test|op_conformance_test|text_golden_test)$'
# The plugin's own unit test (every kernel, every weight dtype, batch invariance): UNIT_CPUS.
UNIT_RE='^cpu_backend_test$'

die() { echo "arm64: error: $*" >&2; exit 1; }
# step NAME CMD...: runs CMD within what is left of the time box and prints its duration.
step() {
  local name=$1; shift
  local s left
  s=$(date +%s)
  left=$((BUDGET - (s - T0)))
  [ "$left" -gt 0 ] || die "time box of ${BUDGET}s used up before '$name'"
  echo "--- arm64: $name"
  local rc=0
  # bash -c: the command may be one of the exported functions below.
  timeout --kill-after=30 "$left" bash -c '"$@"' _ "$@" || rc=$?
  [ "$rc" != 124 ] && [ "$rc" != 137 ] || die "'$name' ran past the ${BUDGET}s time box"
  [ "$rc" = 0 ] || die "'$name' failed (exit $rc)"
  echo "--- arm64: $name took $(($(date +%s) - s))s (total $(($(date +%s) - T0))s)"
}

for tool in aarch64-linux-gnu-g++ qemu-aarch64 cmake ninja; do
  command -v "$tool" >/dev/null || die "'$tool' not found (run: bash ci/install-deps.sh --arm64)"
done
[ -f /usr/lib/aarch64-linux-gnu/libhwy.so ] || die "arm64 libraries missing (run: bash ci/install-deps.sh --arm64)"

step configure cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_TOOLCHAIN_FILE="$PWD/cmake/toolchains/aarch64-linux-gnu.cmake" \
  -DTESSERA_CUDA=OFF -DTESSERA_VULKAN=OFF -DTESSERA_OPENCL=OFF -DTESSERA_LEVEL_ZERO=OFF \
  -DTESSERA_BUILD_TESTS=ON -DTESSERA_WERROR=ON -DTESSERA_SKIP_DIRS="cli;fuzz;install;server;npu-reference"

# Build only what the selected tests need (not the engine, server or hub).
TARGETS=$(ctest --test-dir "$BUILD" -N -R "$TESTS_RE" | sed -n 's/^ *Test *#[0-9]*: //p' | tr '\n' ' ')
[ -n "$TARGETS" ] || die "no tests match the selection"
echo "arm64: tests: $TARGETS"
# shellcheck disable=SC2086
step build cmake --build "$BUILD" -j "$JOBS" --target $TARGETS

# The probe must see the CPU plugin's Highway definitions (HWY_DISABLED_TARGETS, ...) to compile
# the same target set: take them from the plugin's own compile command.
mapfile -t HWY_DEFS < <(python3 - "$BUILD/compile_commands.json" <<'PY'
import json, shlex, sys
for e in json.load(open(sys.argv[1])):
    if e["file"].endswith("backends/cpu/kernels_matmul.cc"):
        print("\n".join(t for t in shlex.split(e["command"]) if t.startswith("-DHWY_")))
        break
PY
)
echo "arm64: CPU plugin Highway definitions: ${HWY_DEFS[*]:-none}"
step build-simd-probe aarch64-linux-gnu-g++ -std=c++20 -O1 -Wall -Wextra -Werror "${HWY_DEFS[@]}" \
  ci/arm64_simd_probe.cc -lhwy -o "$BUILD/bin/arm64_simd_probe"
file "$BUILD/lib/tessera/backends/libtessera_backend_cpu.so" | sed 's/^/arm64: /'

# The SIMD target the CPU plugin dispatches to on QEMU_CPU=$1 (the probe's log goes to stderr).
# Fails when the CPU is listed in EXPECT with another target.
chosen_target() {
  local log target want pair
  log=$(QEMU_CPU=$1 qemu-aarch64 "$BUILD/bin/arm64_simd_probe")
  sed 's/^/arm64:   /' <<<"$log" >&2
  target=$(sed -n 's/^hwy chosen target[^:]*: //p' <<<"$log")
  for pair in $EXPECT; do
    [ "${pair%=*}" = "$1" ] || continue
    want=${pair##*=}
    [ "$target" = "$want" ] || die "QEMU_CPU=$1 picks $target, expected $want"
  done
  echo "$target"
}
run_tests() {  # run_tests QEMU_CPU REGEX
  QEMU_CPU=$1 ctest --test-dir "$BUILD" -R "$2" -j "$JOBS" --output-on-failure --timeout 900
}
export -f run_tests
export BUILD JOBS

echo "arm64: QEMU_CPU=max"
declare -A TESTED
target=$(chosen_target max) || exit 1
TESTED[$target]=max
step "test ($target, QEMU_CPU=max)" run_tests max "$TESTS_RE"
# rerun CPUS REGEX KIND: reruns REGEX once per CPU whose target no earlier run tested (a CPU that
# picks an already tested target is skipped).
rerun() {
  local cpu target
  for cpu in $1; do
    echo "arm64: QEMU_CPU=$cpu"
    target=$(chosen_target "$cpu") || exit 1
    if [ -n "${TESTED[$target]:-}" ]; then
      echo "arm64: skipping QEMU_CPU=$cpu: the plugin runs $target there, as on ${TESTED[$target]}"
      continue
    fi
    TESTED[$target]=$cpu
    step "$3 tests ($target, QEMU_CPU=$cpu)" run_tests "$cpu" "$2"
  done
}
rerun "$SIMD_CPUS" "$SIMD_RE" simd
rerun "$UNIT_CPUS" "$UNIT_RE" unit
echo "arm64: SIMD targets tested: $(for t in "${!TESTED[@]}"; do printf '%s (QEMU_CPU=%s) ' "$t" "${TESTED[$t]}"; done)"
echo "arm64: passed in $(($(date +%s) - T0))s"
