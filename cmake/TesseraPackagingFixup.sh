#!/usr/bin/env bash
# Makes one CPack staging tree self-contained, the way ci/bundle.sh makes its bundle: copies
# every shared library its ELF files need (except the glibc family and vendor driver libraries)
# into ROOT/lib with RUNPATH $ORIGIN, checks that every RPATH is $ORIGIN-relative, strips, and
# writes ROOT/share/tessera/packages/GROUP.txt (what was bundled, from which Debian package).
# cmake/TesseraPackaging.cmake runs it at the end of each core/backend component's install while
# CPack stages that component (never on a plain `cmake --install`).
#
# Usage: TesseraPackagingFixup.sh ROOT GROUP GLIBC_FLOOR [PROVIDED_FILE...]
#   ROOT              staged package tree (bin/, lib/, share/ under it)
#   GROUP             staging folder's component or group (core, cpu, cuda, ...): names the
#                     manifest; licences of the core package's (core, cpu) go to third-party/
#   GLIBC_FLOOR       the package's libc6 dependency: fail if a file needs a newer GLIBC_x.y
#   PROVIDED_FILE     build-tree binaries of the package this one depends on (engine, the core
#                     library, the CPU plugin): they and every library they need are in that
#                     package's lib/ already, so this one must not ship a second copy
set -euo pipefail

die() { echo "package-fixup: error: $*" >&2; exit 1; }
[ $# -ge 3 ] || die "usage: $0 ROOT GROUP GLIBC_FLOOR [PROVIDED_FILE...]"
ROOT=$1 GROUP=$2 FLOOR=$3
shift 3
for tool in ldd patchelf strip objdump; do
  command -v "$tool" >/dev/null || die "'$tool' not found (ci/install-deps.sh installs patchelf, binutils)"
done

is_glibc() {
  case "$1" in
    linux-vdso.so*|linux-gate.so*|ld-linux*|ld64.so*|libc.so*|libm.so*|libdl.so*|libpthread.so*|\
    librt.so*|libresolv.so*|libutil.so*|libmvec.so*|libanl.so*|libnss_*|libthread_db.so*|\
    libBrokenLocale.so*) return 0 ;;
  esac
  return 1
}
# The installed driver's ABI: a copy would be wrong on any machine but this one.
is_vendor() {
  case "$1" in
    libcuda.so*|libvulkan.so*|libOpenCL.so*|libze_loader.so*|libnvidia*) return 0 ;;
  esac
  return 1
}
is_elf() { [ -f "$1" ] && [ ! -L "$1" ] && [ "$(od -An -tx1 -N4 "$1" 2>/dev/null | tr -d ' \n')" = 7f454c46 ]; }
# Prints "soname<TAB>resolved path" (or "not found") for every dependency ldd reports.
ldd_deps() {
  LD_LIBRARY_PATH='' LD_PRELOAD='' ldd "$1" 2>/dev/null | awk '
    $2 == "=>" && $3 == "not" { print $1 "\tnot found"; next }
    $2 == "=>" && $3 ~ /^\// { print $1 "\t" $3 }'
}
declare -A PROVIDED=()  # sonames the depended-on package ships
for f in "$@"; do
  [ -n "$f" ] || continue
  [ -f "$f" ] || die "provided file $f does not exist (not built?)"
  PROVIDED[$(basename "$f")]=1
  while IFS=$'\t' read -r name _; do PROVIDED[$name]=1; done < <(ldd_deps "$f")
done
provided() { [ -n "${PROVIDED[$1]:-}" ]; }

declare -A BUNDLED=()  # soname -> source path on the build machine
# Our files first (their list is fixed before any library is copied in).
mapfile -d '' OURS < <(find "$ROOT" -type f -print0)
mkdir -p "$ROOT/lib"

# As ci/bundle.sh does: the GPU plugins dlopen the vendor-neutral ICD loader of their API, which
# ldd cannot see and GPU servers without a desktop stack often lack, so the plugin's package
# carries this machine's copy (the drivers themselves still come from the target).
elf_machine() { od -An -tx1 -j18 -N2 "$1" 2>/dev/null | tr -d ' \n'; }
case "$GROUP" in
  vulkan) LOADER=libvulkan.so.1 ;;
  opencl) LOADER=libOpenCL.so.1 ;;
  level-zero) LOADER=libze_loader.so.1 ;;
  *) LOADER="" ;;
esac
plugin="$ROOT/lib/tessera/backends/libtessera_backend_$GROUP.so"
if [ -n "$LOADER" ] && [ -f "$plugin" ]; then
  for p in $(ldconfig -p 2>/dev/null | awk -v so="$LOADER" '$1 == so { print $NF }'); do
    # The plugin's architecture (a cross build must not get the build machine's loader).
    if [ -f "$p" ] && [ "$(elf_machine "$(readlink -f "$p")")" = "$(elf_machine "$plugin")" ]; then
      BUNDLED[$LOADER]=$(readlink -f "$p")
      cp -L "$p" "$ROOT/lib/$LOADER" && chmod 0755 "$ROOT/lib/$LOADER"
      OURS+=("$ROOT/lib/$LOADER")  # its own dependencies are bundled too
      break
    fi
  done
  [ -n "${BUNDLED[$LOADER]:-}" ] || echo "package-fixup: note: no $LOADER here; the $GROUP plugin will need the target's"
fi
missing=0
for f in "${OURS[@]}"; do
  is_elf "$f" || continue
  while IFS=$'\t' read -r name path; do
    if is_glibc "$name" || is_vendor "$name" || provided "$name"; then continue; fi
    [ "$path" != "not found" ] || { echo "package-fixup: ${f#"$ROOT"/} needs $name: not found" >&2; missing=1; continue; }
    case "$(readlink -f "$path")" in "$(readlink -f "$ROOT")"/*) continue ;; esac  # one of ours
    [ -n "${BUNDLED[$name]:-}" ] && continue
    BUNDLED[$name]=$(readlink -f "$path")
    cp -L "$path" "$ROOT/lib/$name"
    chmod 0755 "$ROOT/lib/$name"
  done < <(ldd_deps "$f")
done
[ "$missing" = 0 ] || die "unresolved dependencies (see above)"

# Strip before patchelf (strip rewrites sections and can break patchelf's layout).
while IFS= read -r -d '' f; do
  is_elf "$f" || continue
  rel=${f#"$ROOT"/}
  strip --strip-unneeded "$f"
  if [[ $rel == lib/* && $rel != lib/*/* && -n "${BUNDLED[${rel#lib/}]:-}" ]]; then
    patchelf --set-rpath '$ORIGIN' "$f"
    continue
  fi
  rp=$(patchelf --print-rpath "$f")
  case "$rel" in
    bin/*) [ "$rp" = '$ORIGIN/../lib' ] || patchelf --force-rpath --set-rpath '$ORIGIN/../lib' "$f" ;;
    *) if [ -z "$rp" ] || [[ "$rp" =~ (^|:)[^$:] ]]; then
         die "$rel has RPATH '$rp': every entry must start with \$ORIGIN (fix its install rule)"
       fi ;;
  esac
done < <(find "$ROOT" -type f -print0)

# The oldest glibc the package runs on must not exceed its libc6 dependency.
need=$(find "$ROOT" -type f -print0 | while IFS= read -r -d '' f; do
  is_elf "$f" && objdump -T "$f" 2>/dev/null | grep -oE 'GLIBC_[0-9]+(\.[0-9]+)+' || true
done | sed 's/GLIBC_//' | sort -uV | tail -n1)
if [ -n "$need" ] && [ "$(printf '%s\n%s\n' "$need" "$FLOOR" | sort -V | tail -n1)" != "$FLOOR" ]; then
  die "files need glibc $need, newer than the package's libc6 (>= $FLOOR) dependency"
fi

# Licences of what we redistribute, and the manifest.
docs="$ROOT/share/doc/tessera/third-party"
case "$GROUP" in core|cpu) ;; *) docs="$docs-$GROUP" ;; esac  # two packages never own one file
manifest="$ROOT/share/tessera/packages/$GROUP.txt"
mkdir -p "$(dirname "$manifest")"
{
  echo "# Tessera package '$GROUP': libraries bundled from the build machine (needs glibc >= ${need:-?})"
  for name in $(printf '%s\n' "${!BUNDLED[@]}" | sort); do
    src=${BUNDLED[$name]}
    pkg=$(dpkg -S "$src" 2>/dev/null | head -n1 | cut -d: -f1 || true)
    [ -n "$pkg" ] || pkg=$(dpkg -S "${src#/usr}" 2>/dev/null | head -n1 | cut -d: -f1 || true)
    printf '%s\t%s\t%s\n' "$name" "$src" "${pkg:-?}"
    if [ -n "$pkg" ] && [ -f "/usr/share/doc/$pkg/copyright" ]; then
      mkdir -p "$docs/$pkg" && cp "/usr/share/doc/$pkg/copyright" "$docs/$pkg/copyright"
      if [ "$(stat -c %s "$docs/$pkg/copyright")" -gt 100000 ]; then gzip -9nf "$docs/$pkg/copyright"; fi
    fi
  done
} > "$manifest"
rmdir "$ROOT/lib" 2>/dev/null || true
echo "package-fixup: $GROUP: bundled ${#BUNDLED[@]} libraries, needs glibc >= ${need:-?}, $(du -sh "$ROOT" | cut -f1)"
