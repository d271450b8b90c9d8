#!/usr/bin/env bash
# Makes a relocatable Tessera folder: the installed tree plus every shared library it needs that
# a target system cannot be assumed to have, with $ORIGIN-relative RPATHs so the folder runs from
# any path and on Linux systems without Debian's libraries.
#
# Usage: ci/bundle.sh BUILD_DIR OUT_DIR [--tar] [--sdk] [--keep-symbols] [--gpu-tests]
#   BUILD_DIR       a configured and built tree (engine, tessera_core and the backend plugins)
#   OUT_DIR         the bundle; replaced on every run (only if it is empty or an earlier bundle)
#   --tar           also write OUT_DIR.tar.gz
#   --sdk           also install the SDK component (plugin ABI headers, graph.proto, conformance)
#   --keep-symbols  strip debug info only (default also drops symbols no dynamic link needs)
#   --gpu-tests     also copy the built suites and tools a GPU-machine session runs into bin/
#                   (ci/gpu_session.sh, bench/ref_check_gpu.sh); not for release bundles
#
# Layout: bin/engine, lib/libtessera_core.so, lib/tessera/backends/libtessera_backend_<id>.so,
# lib/<bundled third-party .so>, share/tessera/bundle-manifest.txt, share/doc/tessera/third-party.
# Not bundled: the glibc family (must match the target's kernel/loader, and is on every system)
# and vendor driver libraries (libcuda, libvulkan, ... belong to the target's installed driver),
# except the vendor-neutral ICD loaders the GPU plugins dlopen (bundle_loaders). Nor libcurl and
# libcrypto: the engine dlopens the target's copies only when it downloads a model (`engine pull`;
# tools/hub/runtime_libs.h), so ldd does not see them and a bundle without network needs neither.
set -euo pipefail

die() { echo "bundle: error: $*" >&2; exit 1; }
usage() { sed -n '6,13p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

BUILD_DIR="" OUT_DIR="" TAR=0 SDK=0 GPU_TESTS=0 STRIP_MODE=--strip-unneeded
for a in "$@"; do
  case "$a" in
    --tar) TAR=1 ;;
    --sdk) SDK=1 ;;
    --keep-symbols) STRIP_MODE=--strip-debug ;;
    --gpu-tests) GPU_TESTS=1 ;;
    -h|--help) usage ;;
    -*) echo "bundle: unknown option $a" >&2; usage ;;
    *) if [ -z "$BUILD_DIR" ]; then BUILD_DIR=$a; elif [ -z "$OUT_DIR" ]; then OUT_DIR=$a; else usage; fi ;;
  esac
done
[ -n "$BUILD_DIR" ] && [ -n "$OUT_DIR" ] || usage
[ -f "$BUILD_DIR/cmake_install.cmake" ] || die "$BUILD_DIR is not a configured CMake build dir"
for tool in cmake ldd patchelf strip objdump; do
  command -v "$tool" >/dev/null || die "'$tool' not found (run ci/install-deps.sh: patchelf, binutils)"
done
BUILD_DIR=$(cd "$BUILD_DIR" && pwd)
MANIFEST_REL=share/tessera/bundle-manifest.txt

# The glibc family comes from the target: libc and the loader must match each other and the
# kernel, and every Linux system has them. libmvec/libanl/libnss_*/libthread_db are glibc too.
is_glibc() {
  case "$1" in
    linux-vdso.so*|linux-gate.so*|ld-linux*|ld64.so*|libc.so*|libm.so*|libdl.so*|libpthread.so*|\
    librt.so*|libresolv.so*|libutil.so*|libmvec.so*|libanl.so*|libnss_*|libthread_db.so*|\
    libBrokenLocale.so*) return 0 ;;
  esac
  return 1
}
# Vendor driver libraries: they are the installed driver's ABI, so a copy would be wrong anywhere
# but on the build machine.
is_vendor() {
  case "$1" in
    libcuda.so*|libvulkan.so*|libOpenCL.so*|libze_loader.so*|libnvidia*) return 0 ;;
  esac
  return 1
}
is_elf() { [ -f "$1" ] && [ ! -L "$1" ] && [ "$(od -An -tx1 -N4 "$1" 2>/dev/null | tr -d ' \n')" = 7f454c46 ]; }

# Replaces OUT_DIR, refusing to delete anything that is not an earlier bundle (a mistyped
# OUT_DIR must never cost someone a directory).
prepare_out_dir() {
  if [ -e "$OUT_DIR" ]; then
    if [ -f "$OUT_DIR/$MANIFEST_REL" ] || [ -z "$(ls -A "$OUT_DIR")" ]; then
      rm -rf "$OUT_DIR"
    else
      die "$OUT_DIR exists and is not a Tessera bundle (no $MANIFEST_REL); refusing to replace it"
    fi
  fi
  mkdir -p "$OUT_DIR"
  OUT_DIR=$(cd "$OUT_DIR" && pwd)
}

# Install components: everything the build defines except the SDK (unless --sdk), i.e. core plus
# one component per backend plugin. Component names come from the generated install scripts.
install_components() {
  local comps
  comps=$(grep -rhoE --include=cmake_install.cmake 'CMAKE_INSTALL_COMPONENT STREQUAL "[^"]+"' "$BUILD_DIR" \
    | sed 's/.*"\(.*\)"/\1/' | sort -u)
  echo "$comps" | grep -qx core || die "no 'core' install component in $BUILD_DIR"
  INSTALLED_COMPONENTS=()
  for c in $comps; do
    if [ "$c" = sdk ] && [ "$SDK" = 0 ]; then continue; fi
    echo "bundle: installing component $c"
    cmake --install "$BUILD_DIR" --prefix "$OUT_DIR" --component "$c" >/dev/null ||
      die "cmake --install --component $c failed (is its target built?)"
    INSTALLED_COMPONENTS+=("$c")
  done
}

# Prints "soname<TAB>resolved path" for every dependency ldd reports; "not found" as the path.
ldd_deps() {
  LD_LIBRARY_PATH='' LD_PRELOAD='' ldd "$1" 2>/dev/null | awk '
    $2 == "=>" && $3 == "not" { print $1 "\tnot found"; next }
    $2 == "=>" && $3 ~ /^\// { print $1 "\t" $3 }'
}

# Copies every non-glibc, non-vendor library the installed ELF files need into OUT_DIR/lib under
# its DT_NEEDED name. ldd reports the whole transitive closure, so one pass suffices.
collect_libs() {
  declare -gA BUNDLED=()  # soname -> source path on the build machine
  local f name path missing=0
  while IFS= read -r -d '' f; do
    is_elf "$f" || continue
    while IFS=$'\t' read -r name path; do
      if is_glibc "$name"; then continue; fi
      if is_vendor "$name"; then echo "bundle: note: $name (vendor driver) left to the target system"; continue; fi
      if [ "$path" = "not found" ]; then
        echo "bundle: error: ${f#"$OUT_DIR"/} needs $name, which is not found on this machine" >&2
        missing=1; continue
      fi
      case "$(readlink -f "$path")" in "$OUT_DIR"/*) continue ;; esac  # one of ours
      [ -n "${BUNDLED[$name]:-}" ] && continue
      BUNDLED[$name]=$(readlink -f "$path")
      cp -L "$path" "$OUT_DIR/lib/$name"
      chmod 0755 "$OUT_DIR/lib/$name"
    done < <(ldd_deps "$f")
  done < <(find "$OUT_DIR" -type f -print0)
  [ "$missing" = 0 ] || die "unresolved dependencies (see above)"
}

# The GPU plugins dlopen vendor-neutral ICD loaders (libvulkan.so.1 for Vulkan, ocl-icd's
# libOpenCL.so.1 for OpenCL, libze_loader.so.1 for Level Zero), so ldd cannot see them, and GPU
# servers without a desktop stack often lack them: the bundle carries this machine's copy next to
# each plugin that is present. The plugins find them through their RUNPATH ($ORIGIN/../..); the
# drivers themselves (ICD manifests + libraries) still come from the target system.
elf_machine() { od -An -tx1 -j18 -N2 "$1" 2>/dev/null | tr -d ' \n'; }
bundle_loader() {  # bundle_loader PLUGIN_ID SONAME
  local plugin="$OUT_DIR/lib/tessera/backends/libtessera_backend_$1.so" soname=$2 path="" p
  [ -f "$plugin" ] || return 0
  for p in $(ldconfig -p 2>/dev/null | awk -v so="$soname" '$1 == so { print $NF }'); do
    # The plugin's architecture (a cross build must not get the build machine's loader).
    if [ -f "$p" ] && [ "$(elf_machine "$(readlink -f "$p")")" = "$(elf_machine "$plugin")" ]; then path=$p; break; fi
  done
  if [ -z "$path" ]; then
    echo "bundle: note: no $soname on this machine; the $1 plugin will need the target's"
    return 0
  fi
  BUNDLED[$soname]=$(readlink -f "$path")
  cp -L "$path" "$OUT_DIR/lib/$soname"
  chmod 0755 "$OUT_DIR/lib/$soname"
}
bundle_loaders() {
  bundle_loader vulkan libvulkan.so.1
  bundle_loader opencl libOpenCL.so.1
  bundle_loader level-zero libze_loader.so.1
}

# Every RPATH entry must be relative to $ORIGIN. Our own targets already are (checked); bundled
# libraries get RUNPATH $ORIGIN so their own dependencies resolve beside them. Strip first:
# strip rewrites sections, and running it after patchelf can break patchelf's layout.
fix_elf_files() {
  local f rel mtime
  while IFS= read -r -d '' f; do
    is_elf "$f" || continue
    rel=${f#"$OUT_DIR"/}
    mtime=$(stat -c %Y "$f")
    fix_one_elf "$f" "$rel"
    touch -d "@$mtime" "$f"  # keep the build's/package's time: reruns and archives stay identical
  done < <(find "$OUT_DIR" -type f -print0)
}

fix_one_elf() {  # fix_one_elf PATH REL
  local f=$1 rel=$2 rp
  strip "$STRIP_MODE" "$f"
  if [[ $rel == lib/* && $rel != lib/*/* && -n "${BUNDLED[${rel#lib/}]:-}" ]]; then
    patchelf --set-rpath '$ORIGIN' "$f"
    return
  fi
  rp=$(patchelf --print-rpath "$f")
  case "$rel" in
    bin/*) # DT_RPATH (not RUNPATH): it also covers the dependencies of dependencies.
      [ "$rp" = '$ORIGIN/../lib' ] || { echo "bundle: setting RPATH of $rel (was '$rp')"; \
        patchelf --force-rpath --set-rpath '$ORIGIN/../lib' "$f"; } ;;
    *)
      if [ -z "$rp" ] || [[ "$rp" =~ (^|:)[^$:] ]]; then
        die "$rel has RPATH '$rp': every entry must start with \$ORIGIN (fix its install rule)"
      fi ;;
  esac
}

# Copyright files of the Debian packages the bundled libraries came from (licences of what we
# redistribute: LGPL, GPL with the runtime exception, BSD, Apache, ...).
write_manifest() {
  local docs="$OUT_DIR/share/doc/tessera/third-party" name pkg m="$OUT_DIR/$MANIFEST_REL"
  mkdir -p "$(dirname "$m")" "$docs"
  {
    echo "# Tessera relocatable bundle: components ${INSTALLED_COMPONENTS[*]}"
    echo "# bundled library<TAB>source on the build machine<TAB>Debian package"
    for name in $(printf '%s\n' "${!BUNDLED[@]}" | sort); do
      pkg=$(dpkg -S "${BUNDLED[$name]}" 2>/dev/null | head -n1 | cut -d: -f1 || true)
      if [ -z "$pkg" ]; then  # usrmerge: dpkg may know the file under /lib rather than /usr/lib
        pkg=$(dpkg -S "${BUNDLED[$name]#/usr}" 2>/dev/null | head -n1 | cut -d: -f1 || true)
      fi
      printf '%s\t%s\t%s\n' "$name" "${BUNDLED[$name]}" "${pkg:-?}"
      if [ -n "$pkg" ] && [ -f "/usr/share/doc/$pkg/copyright" ]; then
        mkdir -p "$docs/$pkg" && cp "/usr/share/doc/$pkg/copyright" "$docs/$pkg/copyright"
        # Boost's lists every source file (2 MB): keep big ones compressed, as Debian does.
        if [ "$(stat -c %s "$docs/$pkg/copyright")" -gt 100000 ]; then gzip -9n "$docs/$pkg/copyright"; fi
      fi
    done
  } > "$m"
}

# The oldest glibc the bundle runs on: the highest GLIBC_x.y symbol version any file requires.
glibc_floor() {
  local f
  while IFS= read -r -d '' f; do
    is_elf "$f" && objdump -T "$f" 2>/dev/null | grep -oE 'GLIBC_[0-9]+(\.[0-9]+)+' || true
  done < <(find "$OUT_DIR" -type f -print0) | sed 's/GLIBC_//' | sort -uV | tail -n1
}

# --gpu-tests: the suites and tools a GPU session runs from the bundle (those the build has);
# collect_libs and fix_elf_files then treat them as any bin/ file.
GPU_TEST_BINARIES="op_conformance_test text_golden_test server_scheduler_test vulkan_backend_test
  cuda_argmax_graph_test ref_logprobs"
copy_gpu_tests() {
  local t
  [ "$GPU_TESTS" = 1 ] || return 0
  mkdir -p "$OUT_DIR/bin"
  for t in $GPU_TEST_BINARIES; do
    if [ -f "$BUILD_DIR/bin/$t" ]; then cp "$BUILD_DIR/bin/$t" "$OUT_DIR/bin/"; else echo "bundle: note: no $t in $BUILD_DIR/bin"; fi
  done
}

prepare_out_dir
mkdir -p "$OUT_DIR/lib"
install_components
copy_gpu_tests
collect_libs
bundle_loaders
fix_elf_files
write_manifest
echo "bundle: $OUT_DIR"
echo "bundle: components: ${INSTALLED_COMPONENTS[*]}"
echo "bundle: bundled libraries (${#BUNDLED[@]}):"
grep -v '^#' "$OUT_DIR/$MANIFEST_REL" | awk -F'\t' '{ printf "  %-28s %s (%s)\n", $1, $2, $3 }'
echo "bundle: needs glibc >= $(glibc_floor) on the target (the glibc family and GPU drivers are not bundled)"
echo "bundle: size $(du -sh "$OUT_DIR" | cut -f1) ($(du -sb "$OUT_DIR" | cut -f1) bytes)"
if [ "$TAR" = 1 ]; then
  # Reproducible: fixed order, owners and mtimes (SOURCE_DATE_EPOCH, else the built engine's),
  # and no timestamp in the gzip header, so an unchanged build gives a byte-identical archive.
  epoch=${SOURCE_DATE_EPOCH:-$(stat -c %Y "$OUT_DIR/bin/engine")}
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$epoch" \
    -C "$(dirname "$OUT_DIR")" -cf - "$(basename "$OUT_DIR")" | gzip -9n > "$OUT_DIR.tar.gz"
  echo "bundle: wrote $OUT_DIR.tar.gz ($(du -sh "$OUT_DIR.tar.gz" | cut -f1))"
fi
