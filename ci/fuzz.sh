#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + libFuzzer) and runs each for a bounded time on
# its seed corpus. Usage: bash ci/fuzz.sh [SECONDS_PER_TARGET]   (default 30)
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-30}
BUILD=build/fuzz
CC=clang CXX=clang++ cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DTESSERA_FUZZ=ON -DTESSERA_BUILD_TESTS=OFF -DTESSERA_CUDA=OFF -DTESSERA_VULKAN=OFF \
  -DTESSERA_OPENCL=OFF -DTESSERA_LEVEL_ZERO=OFF > "$BUILD.configure.log" 2>&1 || { cat "$BUILD.configure.log"; exit 1; }
# target -> seed corpus folder
declare -A CORPUS=(
  [safetensors_fuzz]=tests/fixtures/safetensors/corpus
  [jinja_fuzz]=modalities/text/jinja/fuzz_corpus
  [tokenizer_fuzz]=tests/fixtures/tokenizers/fuzz_corpus
  [request_fuzz]=tools/server/fuzz_corpus
)
targets=()
# The list is read once into a variable: `ninja ... | grep -q` under pipefail fails whenever grep
# exits early and ninja gets SIGPIPE, which silently skipped targets.
all_targets=$(ninja -C "$BUILD" -t targets all 2>/dev/null)
for t in "${!CORPUS[@]}"; do
  if grep -q "^$t:" <<< "$all_targets"; then targets+=("$t"); else echo "fuzz: no target $t"; fi
done
[ "${#targets[@]}" = "${#CORPUS[@]}" ] || { echo "fuzz: a fuzz target is missing"; exit 1; }
cmake --build "$BUILD" -j "$(nproc)" --target "${targets[@]}"
for t in "${targets[@]}"; do
  work=$(mktemp -d)
  cp -r "${CORPUS[$t]}/." "$work/" 2>/dev/null || true
  echo "=== fuzz $t for ${SECS}s (seed corpus ${CORPUS[$t]})"
  rc=0
  "$BUILD/bin/$t" -max_total_time="$SECS" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 "$work" > "$BUILD/$t.log" 2>&1 || rc=$?
  grep -E "(DONE|ERROR|SUMMARY|stat::number_of_executed_units)" "$BUILD/$t.log" | tail -5 || true
  rm -rf "$work"
  if [ "$rc" != 0 ]; then tail -40 "$BUILD/$t.log"; echo "fuzz: $t FAILED (rc $rc)"; exit 1; fi
done
echo "fuzz: ${#targets[@]} targets ran clean for ${SECS}s each"
