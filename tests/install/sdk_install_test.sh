#!/usr/bin/env bash
# The plugin SDK end to end, as a vendor sees it:
#   1. `cmake --install --component sdk` into a temporary prefix; the expected files are there and
#      the conformance runner depends on nothing in the build tree;
#   2. backends/skeleton copied OUTSIDE the source tree, configured with only
#      -DCMAKE_PREFIX_PATH=<prefix> and built;
#   3. `engine devices -v --backend-path <plugin>` lists it with its no-device reason;
#   4. the installed conformance runner, run on it, says it has no device (a clean result, no
#      signal).
# usage: sdk_install_test.sh <build dir> <source root> <engine> <cmake> <generator> [make program]
set -euo pipefail

build=$1 src=$2 engine=$3 cmake=$4 generator=$5 make_program=${6:-}
ctest=$(dirname "$cmake")/ctest
tmp=$(mktemp -d /tmp/tessera-sdk-test.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
fail() { echo "sdk_install_test: FAIL: $*" >&2; exit 1; }
step() { echo "== $*"; }

step "install the sdk component into $prefix"
"$cmake" --install "$build" --prefix "$prefix" --component sdk >"$tmp/install.log" ||
  { cat "$tmp/install.log"; fail "cmake --install failed"; }
for f in include/tessera/plugin_api.h include/tessera/quant_formats.h \
  include/tessera/backend/validate.h include/tessera/backend/abi.h share/tessera/graph.proto \
  lib/libtessera_backend_common.a lib/cmake/Tessera/TesseraConfig.cmake \
  lib/cmake/Tessera/TesseraConfigVersion.cmake lib/cmake/Tessera/TesseraPluginSDKTargets.cmake \
  bin/op_conformance_test; do
  [[ -e $prefix/$f ]] || fail "missing $prefix/$f"
done
runner=$prefix/bin/op_conformance_test
# No rpath or library of the build tree may leak into the installed runner.
if readelf -d "$runner" | grep -E 'R(UN)?PATH' | grep -qF "$build"; then
  fail "installed runner has a build-tree rpath: $(readelf -d "$runner" | grep -E 'R(UN)?PATH')"
fi
if ldd "$runner" | grep -E "not found|$build"; then fail "installed runner's libraries"; fi

step "copy backends/skeleton out of the tree and build it against the SDK only"
cp -r "$src/backends/skeleton" "$tmp/skeleton"
if grep -rnF -e "$src" -e PROJECT_SOURCE_DIR -e '../' "$tmp/skeleton/CMakeLists.txt"; then
  fail "the skeleton's CMakeLists.txt refers to the Tessera source tree"
fi
gen_args=(-G "$generator")
[[ -n $make_program ]] && gen_args+=("-DCMAKE_MAKE_PROGRAM=$make_program")
"$cmake" -S "$tmp/skeleton" -B "$tmp/skeleton-build" "${gen_args[@]}" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$prefix" >"$tmp/configure.log" 2>&1 ||
  { cat "$tmp/configure.log"; fail "configuring the copied skeleton failed"; }
"$cmake" --build "$tmp/skeleton-build" -j2 >"$tmp/build.log" 2>&1 ||
  { cat "$tmp/build.log"; fail "building the copied skeleton failed"; }
if grep -rlF "$src" "$tmp/skeleton-build" --include='*.ninja' --include=Makefile \
  --include=CMakeCache.txt; then
  fail "the out-of-tree build refers to the Tessera source tree"
fi
plugin=$tmp/skeleton-build/libtessera_backend_skeleton.so
[[ -f $plugin ]] || fail "no $plugin"
exports=$(nm -D --defined-only "$plugin" | awk '{print $3}' | grep -v '^_' | sort | tr '\n' ' ')
[[ $exports == "tsr_plugin_init tsr_plugin_probe " ]] || fail "unexpected exports: $exports"

step "engine devices -v --backend-path $plugin"
set +e
"$engine" devices -v --backend-path "$plugin" >"$tmp/devices.log" 2>&1
rc=$?
set -e
cat "$tmp/devices.log"
((rc < 128)) || fail "engine devices died with signal $((rc - 128))"
grep -q "^skeleton (" "$tmp/devices.log" || fail "the skeleton is not listed as a backend"
grep -q "no devices: the skeleton plugin drives no hardware" "$tmp/devices.log" ||
  fail "the skeleton's no-device reason is missing"
grep -qF "+ $plugin [--backend-path]: loaded" "$tmp/devices.log" ||
  fail "the skeleton is not reported as loaded from --backend-path"

step "installed conformance runner on the skeleton"
set +e
TESSERA_CONFORMANCE_PLUGINS=$plugin "$runner" >"$tmp/conformance.log" 2>&1
rc=$?
set -e
tail -n 20 "$tmp/conformance.log"
((rc < 128)) || fail "the conformance runner died with signal $((rc - 128))"
grep -q "(skeleton) has no device (the skeleton plugin drives no hardware" "$tmp/conformance.log" ||
  fail "the runner did not report that the skeleton has no device (exit $rc)"

step "the skeleton's own ctest (tessera_add_conformance_test from the package)"
"$ctest" --test-dir "$tmp/skeleton-build" --output-on-failure >"$tmp/ctest.log" 2>&1 ||
  { cat "$tmp/ctest.log"; fail "ctest of the copied skeleton failed"; }
grep -q "skeleton_conformance" "$tmp/ctest.log" || fail "skeleton_conformance was not registered"

echo "sdk_install_test: OK"
