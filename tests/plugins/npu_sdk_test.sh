#!/usr/bin/env bash
# backends/npu-reference as a vendor builds it, end to end:
#   1. `cmake --install --component sdk` into a temporary prefix;
#   2. backends/npu-reference copied OUTSIDE the source tree, configured with only
#      -DCMAKE_PREFIX_PATH=<prefix> (graph.proto comes from the SDK) and built;
#   3. the result exports only the two entry points;
#   4. npu_reference_test (claim, f16 boundary, buckets, blob cache, memory cap) on that build;
#   5. the golden suite with --backend=npu-reference (CPU fallback) at fp16 tolerance, twice with
#      one cache folder: the first start compiles (and runs paged attention on the NPU: its
#      "executed" counters), the second compiles nothing.
# usage: npu_sdk_test.sh <build dir> <source root> <cmake> <generator> <make program>
#        <npu_reference_test> <text_golden_test> <cpu plugin> <fixtures dir> <tolerance>
set -euo pipefail

build=$1 src=$2 cmake=$3 generator=$4 make_program=$5 unit_test=$6 golden=$7 cpu=$8
fixtures=$9 tolerance=${10}
tmp=$(mktemp -d /tmp/tessera-npu-sdk.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
fail() { echo "npu_sdk_test: FAIL: $*" >&2; exit 1; }
step() { echo "== $*"; }

step "install the sdk component into $prefix"
"$cmake" --install "$build" --prefix "$prefix" --component sdk >"$tmp/install.log" ||
  { cat "$tmp/install.log"; fail "cmake --install failed"; }
[[ -f $prefix/share/tessera/graph.proto ]] || fail "the SDK has no share/tessera/graph.proto"

step "copy backends/npu-reference out of the tree and build it against the SDK only"
cp -r "$src/backends/npu-reference" "$tmp/npu-reference"
if grep -nF -e "$src" -e PROJECT_SOURCE_DIR -e '../' "$tmp/npu-reference/CMakeLists.txt"; then
  fail "npu-reference's CMakeLists.txt refers to the Tessera source tree"
fi
gen_args=(-G "$generator")
[[ -n $make_program ]] && gen_args+=("-DCMAKE_MAKE_PROGRAM=$make_program")
"$cmake" -S "$tmp/npu-reference" -B "$tmp/build" "${gen_args[@]}" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$prefix" >"$tmp/configure.log" 2>&1 ||
  { cat "$tmp/configure.log"; fail "configuring the copied npu-reference failed"; }
"$cmake" --build "$tmp/build" -j2 >"$tmp/build.log" 2>&1 ||
  { cat "$tmp/build.log"; fail "building the copied npu-reference failed"; }
if grep -rlF "$src" "$tmp/build" --include='*.ninja' --include=Makefile --include=CMakeCache.txt; then
  fail "the out-of-tree build refers to the Tessera source tree"
fi
plugin=$tmp/build/libtessera_backend_npu_reference.so
[[ -f $plugin ]] || fail "no $plugin"
exports=$(nm -D --defined-only "$plugin" | awk '{print $3}' | grep -v '^_' | sort | tr '\n' ' ')
[[ $exports == "tsr_plugin_init tsr_plugin_probe " ]] || fail "unexpected exports: $exports"
if ldd "$plugin" | grep -E "not found|$build"; then fail "the plugin's libraries"; fi

step "npu_reference_test on the out-of-tree build"
NPU_PLUGIN=$plugin CPU_PLUGIN=$cpu "$unit_test" >"$tmp/unit.log" 2>&1 ||
  { tail -n 60 "$tmp/unit.log"; fail "npu_reference_test failed on the out-of-tree plugin"; }
tail -n 3 "$tmp/unit.log"

golden_run() {  # $1 = stats file
  XDG_CACHE_HOME=$tmp/cache TESSERA_NPU_STATS_FILE=$1 TESSERA_MODEL_FIXTURES=$fixtures \
    TESSERA_TEST_PLUGINS=$plugin:$cpu TESSERA_TEST_BACKEND=npu-reference \
    TESSERA_GOLDEN_LOGPROB_TOLERANCE=$tolerance "$golden"
}
step "golden suite, --backend=npu-reference, first start (tolerance $tolerance)"
golden_run "$tmp/stats1.json" >"$tmp/golden1.log" 2>&1 ||
  { tail -n 80 "$tmp/golden1.log"; fail "the golden suite failed on npu-reference"; }
tail -n 3 "$tmp/golden1.log"
cat "$tmp/stats1.json"
grep -qE '"compiled": [1-9]' "$tmp/stats1.json" || fail "the first start compiled nothing"
grep -qE '"PAGED_ATTENTION": [1-9]' "$tmp/stats1.json" || fail "attention did not run on the NPU"
ls "$tmp/cache/tessera/npu/"*.npub >/dev/null || fail "no blob in \$XDG_CACHE_HOME/tessera/npu"

step "golden suite, second start: every executable must come from the blob cache"
golden_run "$tmp/stats2.json" >"$tmp/golden2.log" 2>&1 ||
  { tail -n 80 "$tmp/golden2.log"; fail "the second golden run failed"; }
cat "$tmp/stats2.json"
grep -qE '"compiled": 0,' "$tmp/stats2.json" || fail "the second start compiled again"
grep -qE '"cache_hits": [1-9]' "$tmp/stats2.json" || fail "the second start hit no blob"

echo "npu_sdk_test: OK"
