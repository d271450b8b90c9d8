#!/usr/bin/env bash
# Checks that a bundle made by ci/bundle.sh is self-contained and relocatable:
#  1. `LD_LIBRARY_PATH= ldd` on every ELF file: nothing "not found", nothing resolved outside the
#     bundle except the glibc family (and vendor driver libraries, which must come from the
#     target); every RPATH/RUNPATH entry is $ORIGIN-relative (no build-machine paths).
#  2. copies the bundle to a fresh path containing a space and runs `engine --version` and
#     `engine devices -v` there with a scrubbed environment; every object the loader maps
#     (LD_DEBUG=files, so dlopen'ed plugins count) must come from the copy or glibc, and the CPU
#     backend must be listed from the copy once the bundle has it.
# Usage: tests/install/check_bundle.sh BUNDLE_DIR
set -euo pipefail

[ $# -eq 1 ] && [ -d "$1" ] || { echo "usage: $0 BUNDLE_DIR" >&2; exit 2; }
BUNDLE=$(cd "$1" && pwd -P)
[ -x "$BUNDLE/bin/engine" ] || { echo "check_bundle: $BUNDLE/bin/engine missing" >&2; exit 1; }
ERRORS=0
err() { echo "check_bundle: FAIL: $*" >&2; ERRORS=$((ERRORS + 1)); }

# Keep these two lists in sync with ci/bundle.sh.
is_glibc() {
  case "$1" in
    linux-vdso.so*|linux-gate.so*|ld-linux*|ld64.so*|libc.so*|libm.so*|libdl.so*|libpthread.so*|\
    librt.so*|libresolv.so*|libutil.so*|libmvec.so*|libanl.so*|libnss_*|libthread_db.so*|\
    libBrokenLocale.so*) return 0 ;;
  esac
  return 1
}
is_vendor() {
  case "$1" in
    libcuda.so*|libvulkan.so*|libOpenCL.so*|libze_loader.so*|libnvidia*) return 0 ;;
  esac
  return 1
}
is_elf() { [ -f "$1" ] && [ ! -L "$1" ] && [ "$(od -An -tx1 -N4 "$1" 2>/dev/null | tr -d ' \n')" = 7f454c46 ]; }
inside() { case "$(readlink -f "$2")" in "$1"/*) return 0 ;; esac; return 1; }

# --- 1. static check -------------------------------------------------------------------------
check_elf() {  # check_elf FILE
  local f=$1 rel=${1#"$BUNDLE"/} line name path rp
  while IFS= read -r line; do
    line=${line#"${line%%[![:space:]]*}"}
    case "$line" in
      *"=> not found"*)
        name=${line%% *}
        if is_vendor "$name"; then echo "  $rel: $name not found (vendor driver, from the target system)"
        else err "$rel: $name not found"; fi ;;
      *" => "*)
        name=${line%% *}; path=${line#* => }; path=${path% (0x*}
        if inside "$BUNDLE" "$path" || is_glibc "$name" || is_glibc "$(basename "$path")"; then :
        elif is_vendor "$name"; then echo "  $rel: $name -> $path (vendor driver, from the target system)"
        else err "$rel: $name resolves outside the bundle: $path"; fi ;;
      /*" (0x"*)  # the program interpreter, e.g. /lib64/ld-linux-x86-64.so.2
        path=${line% (0x*}
        is_glibc "$(basename "$path")" || err "$rel: unexpected interpreter $path" ;;
    esac
  done < <(LD_LIBRARY_PATH='' LD_PRELOAD='' ldd "$f" 2>&1 || true)
  while IFS= read -r rp; do
    local IFS=:
    for entry in $rp; do
      case "$entry" in '$ORIGIN'*|'${ORIGIN}'*) ;; *) err "$rel: RPATH/RUNPATH entry '$entry' is not \$ORIGIN-relative" ;; esac
    done
  done < <(readelf -d "$f" 2>/dev/null | sed -n 's/.*(R\(UN\)\{0,1\}PATH).*\[\(.*\)\]$/\2/p')
}

n=0
while IFS= read -r -d '' f; do
  is_elf "$f" || continue
  check_elf "$f"
  n=$((n + 1))
done < <(find "$BUNDLE" -type f -print0 | sort -z)
echo "check_bundle: ldd checked $n ELF files in $BUNDLE: $ERRORS problem(s)"

# --- 2. relocated run ------------------------------------------------------------------------
TMP=$(mktemp -d "${TMPDIR:-/tmp}/tessera check.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
MOVED="$TMP/moved bundle"
cp -a "$BUNDLE" "$MOVED"
MOVED=$(cd "$MOVED" && pwd -P)
ENGINE="$MOVED/bin/engine"
# A scrubbed environment: no LD_LIBRARY_PATH, no TESSERA_* settings, a HOME without config files.
# GPU drivers and their dependencies (Mesa's LLVM, libdrm, X11 ...) belong to the target system:
# keep the ICD loaders (bundled, so they are checked) from loading any driver or implicit layer.
run_engine() { env -i PATH=/usr/bin:/bin HOME="$TMP" LANG=C LD_DEBUG=files LD_DEBUG_OUTPUT="$TMP/ld" \
  VK_DRIVER_FILES=/nonexistent/vulkan_icd.json VK_LOADER_LAYERS_DISABLE='~all~' \
  OCL_ICD_VENDORS=/nonexistent/ OCL_ICD_FILENAMES= ZE_ENABLE_NULL_DRIVER=0 "$ENGINE" "$@"; }

echo "check_bundle: running from '$MOVED'"
if out=$(run_engine --version 2>&1); then echo "\$ engine --version"; echo "$out"
else err "engine --version exited $?: $out"; fi
set +e
devices=$(run_engine devices -v 2>&1)
rc=$?
set -e
echo "\$ engine devices -v   (exit $rc)"
echo "$devices"

# Every object the loader mapped in either run, including dlopen'ed plugins.
mapped=$(cat "$TMP"/ld.* 2>/dev/null | sed -n 's/^ *[0-9]*:[[:space:]]*calling init: \(\/.*\)$/\1/p' |
  while IFS= read -r p; do readlink -f "$p"; done | sort -u)
[ -n "$mapped" ] || err "LD_DEBUG recorded no loaded objects"
while IFS= read -r p; do
  [ -n "$p" ] || continue
  if inside "$MOVED" "$p" || is_glibc "$(basename "$p")" || is_vendor "$(basename "$p")"; then :
  else err "the relocated engine loaded $p from outside the bundle"; fi
done <<< "$mapped"
echo "check_bundle: objects loaded at run time: $(grep -cF "$MOVED/" <<< "$mapped" || true) from the bundle," \
  "$(grep -vcF "$MOVED/" <<< "$mapped" || true) from the system: $(grep -vF "$MOVED/" <<< "$mapped" | tr '\n' ' ')"

if [ -f "$BUNDLE/lib/tessera/backends/libtessera_backend_cpu.so" ]; then
  [ "$rc" = 0 ] || err "engine devices -v exited $rc although the bundle has the CPU plugin"
  grep -qF "cpu (" <<< "$devices" && grep -qF "$MOVED/lib/tessera/backends/libtessera_backend_cpu.so" <<< "$devices" ||
    err "devices does not list the cpu backend from the relocated bundle"
else
  echo "check_bundle: note: the bundle has no CPU plugin (not built?); devices not required to list it"
fi

# The relocated engine chats with the bundled default model (share/tessera/models/default).
if [ -f "$MOVED/lib/tessera/backends/libtessera_backend_cpu.so" ]; then
  set +e
  chat=$(printf 'In the beginning\n' | env -u TESSERA_BACKEND_PATH -u TESSERA_BACKENDS "$MOVED/bin/engine" run --max-tokens 8 --temperature 0 2>/dev/null)
  crc=$?
  set -e
  echo "\$ echo 'In the beginning' | engine run   (exit $crc)"
  echo "$chat"
  [ "$crc" = 0 ] && [ -n "$chat" ] || err "the relocated engine cannot chat with the bundled default model"
fi

# Without its plugins the engine must fail with a clear message naming where it looked, not crash.
PLUGINS="$MOVED/lib/tessera/backends"
if [ -f "$PLUGINS/libtessera_backend_cpu.so" ]; then
  mkdir "$TMP/plugins.moved"
  mv "$PLUGINS"/*.so "$TMP/plugins.moved/"
  set +e
  missing=$(env -u TESSERA_BACKEND_PATH -u TESSERA_BACKENDS "$MOVED/bin/engine" devices 2>&1)
  mrc=$?
  set -e
  mv "$TMP/plugins.moved"/*.so "$PLUGINS/"
  echo "\$ engine devices   (every plugin deleted; exit $mrc)"
  echo "$missing"
  case $mrc in 0|1) ;; *) err "engine without plugins exited $mrc (a crash?)";; esac
  [ "$mrc" = 1 ] || err "engine without plugins should exit 1"
  grep -qF "no backend plugin could be loaded" <<< "$missing" && grep -qF "$PLUGINS (bundled)" <<< "$missing" ||
    err "the missing-plugin error does not name where it looked"
fi

# `engine pull` loads libcurl (and libcrypto) from the target system when it downloads; the bundle
# carries neither. With no libcurl it must fail with what to install. With the system's libcurl
# (if this machine has one) a file:// endpoint gets curl's own refusal (transfers are limited to
# http/https): proof that the relocated engine loaded and ran it, with no network needed.
pull() { env -i PATH=/usr/bin:/bin HOME="$TMP" LANG=C HF_HUB_CACHE="$TMP/hf" "$@" "$ENGINE" pull \
  tessera-test/none 2>&1; }
if nocurl=$(pull TESSERA_LIBCURL=libtessera-no-such-curl.so.4); then
  err "engine pull succeeded without libcurl"
fi
echo "\$ engine pull tessera-test/none   (TESSERA_LIBCURL=<missing>)"
echo "$nocurl"
grep -qF "downloads need libcurl" <<< "$nocurl" || err "engine pull without libcurl does not say what it needs"
if syscurl=$(pull HF_ENDPOINT=file:///nonexistent); then err "engine pull from a file:// endpoint succeeded"; fi
echo "\$ engine pull tessera-test/none   (HF_ENDPOINT=file:///nonexistent)"
echo "$syscurl"
if grep -qF "downloads need libcurl" <<< "$syscurl"; then
  echo "check_bundle: note: this system has no libcurl; engine pull says so"
elif ! grep -qi "protocol" <<< "$syscurl"; then
  err "engine pull with the system's libcurl: unexpected error"
fi

if [ "$ERRORS" -ne 0 ]; then echo "check_bundle: $ERRORS failure(s)"; exit 1; fi
echo "check_bundle: OK ($BUNDLE is self-contained and relocatable)"
