#!/usr/bin/env bash
# Builds the OEM packages of a built tree with cpack (cmake/TesseraPackaging.cmake) and checks
# them: the core tarball, extracted into a fresh folder, runs without installation
# (tests/install/check_bundle.sh: self-contained under ldd, relocatable, `engine devices -v`,
# `engine run` on the bundled default model); each .deb has the expected name, prefix and
# dependency; and the sizes stay within the targets (core + CPU <= 30 MB compressed and unpacked,
# CUDA <= 300 MB compressed). TESSERA_CORE_PACKAGE_LIMIT_MB, TESSERA_CORE_PACKAGE_UNPACKED_LIMIT_MB
# and TESSERA_CUDA_PACKAGE_LIMIT_MB override the limits.
# ctest runs it as package_test; prints a size table for docs/packaging.md.
#
# Usage: cmake/TesseraPackagingTest.sh BUILD_DIR SOURCE_DIR [OUT_DIR]
#   OUT_DIR: where the packages go (default BUILD_DIR/packages; replaced)
set -euo pipefail

die() { echo "package_test: FAIL: $*" >&2; exit 1; }
[ $# -ge 2 ] || die "usage: $0 BUILD_DIR SOURCE_DIR [OUT_DIR]"
BUILD=$(cd "$1" && pwd) SRC=$(cd "$2" && pwd)
OUT=${3:-$BUILD/packages}
CORE_LIMIT_MB=${TESSERA_CORE_PACKAGE_LIMIT_MB:-30}
CORE_UNPACKED_LIMIT_MB=${TESSERA_CORE_PACKAGE_UNPACKED_LIMIT_MB:-30}
CUDA_LIMIT_MB=${TESSERA_CUDA_PACKAGE_LIMIT_MB:-300}
command -v cpack >/dev/null || die "cpack not found"
command -v dpkg-deb >/dev/null || die "dpkg-deb not found"

rm -rf "$OUT" && mkdir -p "$OUT"
s=$(date +%s)
(cd "$BUILD" && cpack -B "$OUT") > "$OUT/cpack.log" 2>&1 || {
  cat "$OUT/cpack.log" >&2; die "cpack failed"; }
grep -E "package-fixup|generated" "$OUT/cpack.log" || true
echo "package_test: cpack took $(($(date +%s) - s))s"

mb() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
core_tgz=$(ls "$OUT"/tessera-*-core.tar.gz 2>/dev/null | head -n1)
core_deb=$(ls "$OUT"/tessera-core_*.deb 2>/dev/null | head -n1)
[ -n "$core_tgz" ] || die "no core tarball in $OUT"
[ -n "$core_deb" ] || die "no core .deb in $OUT"

# --- sizes --------------------------------------------------------------------------------
echo "package_test: packages (compressed size, unpacked size):"
fail=0
for p in "$OUT"/*.tar.gz "$OUT"/*.deb; do
  size=$(stat -c %s "$p")
  if [[ $p == *.deb ]]; then
    unpacked=$(($(dpkg-deb -f "$p" Installed-Size) * 1024))
  else
    unpacked=$(gzip -dc "$p" | tar -tvf - | awk '{ s += $3 } END { print s + 0 }')
  fi
  printf '  %-52s %7s MB  (%s MB unpacked)\n' "$(basename "$p")" "$(mb "$size")" "$(mb "$unpacked")"
  limit="" unpacked_limit=""
  case "$(basename "$p")" in
    *-core.tar.gz|tessera-core_*.deb) limit=$CORE_LIMIT_MB unpacked_limit=$CORE_UNPACKED_LIMIT_MB ;;
    *-cuda.tar.gz|tessera-cuda_*.deb) limit=$CUDA_LIMIT_MB ;;
  esac
  if [ -n "$limit" ] && [ "$size" -gt $((limit * 1048576)) ]; then
    echo "package_test: FAIL: $(basename "$p") is $(mb "$size") MB, over the ${limit} MB target" >&2
    fail=1
  fi
  if [ -n "$unpacked_limit" ] && [ "$unpacked" -gt $((unpacked_limit * 1048576)) ]; then
    echo "package_test: FAIL: $(basename "$p") unpacks to $(mb "$unpacked") MB, over the" \
      "${unpacked_limit} MB target" >&2
    fail=1
  fi
done

# --- the .deb files -------------------------------------------------------------------------
# (listings go through variables: `dpkg-deb -c | grep -q` would end in SIGPIPE under pipefail)
files_of() { dpkg-deb -c "$1" | awk '{ print $6 }'; }
for p in "$OUT"/*.deb; do
  pkg=$(dpkg-deb -f "$p" Package)
  echo "package_test: $pkg depends: $(dpkg-deb -f "$p" Depends)"
  case "$pkg" in
    tessera-core|tessera-sdk) ;;
    *) grep -qF "tessera-core (= " <<< "$(dpkg-deb -f "$p" Depends)" ||
         { echo "package_test: FAIL: $pkg does not depend on tessera-core" >&2; fail=1; } ;;
  esac
  outside=$(files_of "$p" | grep -vE '^\./(opt/(tessera(/.*)?)?)?$' || true)
  [ -z "$outside" ] || { echo "package_test: FAIL: $pkg installs outside /opt/tessera: $outside" >&2; fail=1; }
done
core_list=$(files_of "$core_deb")
for want in ./opt/tessera/bin/engine ./opt/tessera/lib/libtessera_core.so \
  ./opt/tessera/lib/tessera/backends/libtessera_backend_cpu.so \
  ./opt/tessera/share/tessera/models/default/model.safetensors; do
  grep -qxF "$want" <<< "$core_list" || { echo "package_test: FAIL: core .deb has no $want" >&2; fail=1; }
done
# libcurl and OpenSSL are dlopen'ed from the target system for downloads (tools/hub/runtime_libs.h):
# bundling them again (a new link dependency) would bring back ~16 MB of TLS/Kerberos/LDAP libraries.
heavy=$(grep -E '/lib/lib(curl|ssl|crypto|gnutls|krb5|ldap)[^/]*\.so' <<< "$core_list" || true)
[ -z "$heavy" ] || { echo "package_test: FAIL: core .deb bundles libcurl/TLS libraries: $heavy" >&2; fail=1; }
echo "package_test: tessera-core recommends: $(dpkg-deb -f "$core_deb" Recommends)"
grep -q libcurl <<< "$(dpkg-deb -f "$core_deb" Recommends)" ||
  { echo "package_test: FAIL: tessera-core does not recommend libcurl (engine pull needs it)" >&2; fail=1; }
# The core package's files must never reappear in a backend package (dpkg would refuse both).
core_files=$(dpkg-deb -c "$core_deb" | awk '$1 !~ /^d/ { print $6 }' | sort)
for p in "$OUT"/*.deb; do
  [ "$p" = "$core_deb" ] && continue
  dup=$(comm -12 <(echo "$core_files") <(dpkg-deb -c "$p" | awk '$1 !~ /^d/ { print $6 }' | sort))
  [ -z "$dup" ] || { echo "package_test: FAIL: $(basename "$p") repeats core files: $dup" >&2; fail=1; }
done

# Every tarball has the same single top folder, so backend tarballs extract into the core's tree.
tops=$(for p in "$OUT"/*.tar.gz; do tar -tzf "$p" | cut -d/ -f1 | sort -u; done | sort -u)
[ "$(wc -l <<< "$tops")" = 1 ] || { echo "package_test: FAIL: tarballs have several top folders: $tops" >&2; fail=1; }

# --- the core tarball runs where it is extracted -------------------------------------------
TMP=$(mktemp -d "${TMPDIR:-/tmp}/tessera-pkg.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
tar -xzf "$core_tgz" -C "$TMP"
top="$TMP/$(head -n1 <<< "$tops")"
[ -x "$top/bin/engine" ] || die "the core tarball has no <top>/bin/engine"
echo "package_test: extracted $(basename "$core_tgz") to $top"
bash "$SRC/tests/install/check_bundle.sh" "$top" || fail=1

# Backend tarballs extracted over it: the engine finds each plugin (its device may be absent here,
# then `devices` gives the plugin's absence reason; either way the candidate is listed).
for p in "$OUT"/tessera-*.tar.gz; do
  case "$p" in *-core.tar.gz|*-sdk.tar.gz) continue ;; esac
  tar -xzf "$p" -C "$TMP"
done
devices=$(env -u TESSERA_BACKEND_PATH -u TESSERA_BACKENDS "$top/bin/engine" devices -v 2>&1 || true)
for so in "$top"/lib/tessera/backends/libtessera_backend_*.so; do
  grep -qF "$so" <<< "$devices" || { echo "package_test: FAIL: engine devices does not list $so" >&2; fail=1; }
done
echo "package_test: with every backend tarball extracted, engine devices -v lists:"
grep -E '^[a-z]|\[bundled\]' <<< "$devices" | sed 's/^/  /'

[ "$fail" = 0 ] || die "see above"
echo "package_test: all packages OK"
