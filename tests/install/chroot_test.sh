#!/usr/bin/env bash
# The proof that a bundle runs on a Linux system that has none of our dependencies: a minimal
# Debian bookworm (debootstrap --variant=minbase: glibc, bash, coreutils, apt; no spdlog, fmt,
# protobuf, boost, hwy) gets the bundle at a path with a space in it, and `engine --version` and
# `engine devices -v` run there through chroot with an empty environment.
#
# The chroot is made once and cached in ${TESSERA_CHROOT_CACHE:-/var/cache/tessera/chroot-bookworm-minbase}
# (rebuilt when missing or incomplete); each run adds the bundle under /opt and removes it again.
# The mirror is the one this machine's apt uses (TESSERA_DEBIAN_MIRROR overrides it).
# Exit: 0 pass, 1 fail, 77 skipped (not root, no debootstrap, no mirror reachable, or
# TESSERA_SKIP_CHROOT_TEST=1).
# Usage: tests/install/chroot_test.sh BUNDLE_DIR
set -euo pipefail

SKIP=77
say() { echo "chroot_test: $*"; }
skip() { say "SKIP: $*"; exit "$SKIP"; }
fail() { say "FAIL: $*" >&2; exit 1; }
now() { echo "${EPOCHREALTIME:-$(date +%s.%N)}"; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

[ $# -eq 1 ] && [ -d "$1" ] || { echo "usage: $0 BUNDLE_DIR" >&2; exit 2; }
BUNDLE=$(cd "$1" && pwd -P)
[ -x "$BUNDLE/bin/engine" ] || fail "$BUNDLE/bin/engine missing"
[ "${TESSERA_SKIP_CHROOT_TEST:-0}" = 1 ] && skip "TESSERA_SKIP_CHROOT_TEST=1"
[ "$(id -u)" -eq 0 ] || skip "needs root (debootstrap and chroot)"
command -v debootstrap >/dev/null || skip "debootstrap is not installed (ci/install-deps.sh installs it)"
command -v chroot >/dev/null || skip "chroot is not available"
CACHE=${TESSERA_CHROOT_CACHE:-/var/cache/tessera/chroot-bookworm-minbase}
SUITE=bookworm
READY="$CACHE/.tessera-chroot-ready"

# The first URI of a "deb" source for the plain bookworm suite (not -security/-updates), from
# the one-line sources.list format and the deb822 *.sources format.
find_mirror() {
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    awk -v s="$SUITE" '$1 == "deb" { i = 2
        if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
        if ($(i + 1) == s) print $i }' "$f"
  done
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk -v s="$SUITE" 'BEGIN { RS = ""; FS = "\n" }
      { types = ""; uris = ""; suites = ""; enabled = "yes"
        for (i = 1; i <= NF; i++) {
          if ($i ~ /^#/) continue
          split($i, kv, ":[ \t]*"); key = tolower(kv[1]); val = substr($i, length(kv[1]) + 2)
          gsub(/^[ \t]+|[ \t]+$/, "", val)
          if (key == "types") types = val; else if (key == "uris") uris = val
          else if (key == "suites") suites = val; else if (key == "enabled") enabled = tolower(val)
        }
        if (enabled == "no" || (" " types " ") !~ / deb / || (" " suites " ") !~ (" " s " ")) next
        split(uris, u, /[ \t]+/); print u[1] }' "$f"
  done
}

# apt may reach the mirror through a proxy configured for apt only; debootstrap's wget needs it
# in the environment.
use_apt_proxy() {
  local HTTP_PROXY_APT=""
  eval "$(apt-config shell HTTP_PROXY_APT Acquire::http::Proxy 2>/dev/null || true)"
  if [ -n "$HTTP_PROXY_APT" ] && [ -z "${http_proxy:-}" ]; then export http_proxy=$HTTP_PROXY_APT; fi
}

create_chroot() {
  local mirror tmp log="$CACHE.debootstrap.log" t0
  mirror=${TESSERA_DEBIAN_MIRROR:-$(find_mirror | grep -E '^(https?|file):' | head -n1)}
  [ -n "$mirror" ] || skip "no Debian $SUITE mirror in /etc/apt/sources.list{,.d} (set TESSERA_DEBIAN_MIRROR)"
  use_apt_proxy
  if [[ $mirror == http* ]] && ! wget -q -T 20 -t 2 -O /dev/null "$mirror/dists/$SUITE/Release"; then
    skip "cannot reach $mirror/dists/$SUITE/Release (no network to the Debian mirror?)"
  fi
  say "creating the minbase chroot in $CACHE from $mirror (log: $log)"
  t0=$(now)
  mkdir -p "$(dirname "$CACHE")"
  tmp="$CACHE.tmp.$$"
  rm -rf "$tmp" "$CACHE"
  if ! debootstrap --variant=minbase "$SUITE" "$tmp" "$mirror" > "$log" 2>&1; then
    tail -n 15 "$log" >&2
    # debootstrap mounts these itself while configuring; never rm -rf through a live mount.
    for m in dev/pts proc sys; do if mountpoint -q "$tmp/$m"; then umount -l "$tmp/$m"; fi; done
    if grep -qiE "couldn't download|failed getting release|temporary failure|unable to connect|connection (refused|timed out)" \
      "$log" "$tmp/debootstrap/debootstrap.log" 2>/dev/null; then
      rm -rf "$tmp"
      skip "debootstrap could not download from $mirror (see above)"
    fi
    rm -rf "$tmp"
    fail "debootstrap failed (see $log)"
  fi
  rm -rf "$tmp"/var/cache/apt/archives/*.deb  # 40 MB of .debs the test never needs
  mv "$tmp" "$CACHE"
  touch "$READY"
  say "chroot created in $(since "$t0")s ($(du -sh "$CACHE" | cut -f1))"
}

unmount_proc() { if mountpoint -q "$CACHE/proc"; then umount "$CACHE/proc" || umount -l "$CACHE/proc"; fi; }

# One run at a time (parallel ctest runs, several build trees on one machine): the lock covers
# creating the chroot and the /proc mount, so neither races another run.
mkdir -p "$(dirname "$CACHE")"
exec 9> "$CACHE.lock"
flock 9
[ -d "$CACHE" ] && unmount_proc  # left by a run that was killed before its trap ran
if [ -f "$READY" ] && [ -x "$CACHE/bin/sh" ]; then
  say "using the cached chroot $CACHE"
else
  create_chroot
fi

T0=$(now)
# An unusual path with a space: nothing may depend on where the bundle lives. Removed on exit,
# and /proc unmounted, whatever happens.
RUN_REL="opt/some where/tessera"
RUN_DIR="$CACHE/$RUN_REL"
cleanup() { unmount_proc; rm -rf "$RUN_DIR"; rmdir "$CACHE/opt/some where" 2>/dev/null || true; }
trap cleanup EXIT
trap 'exit 1' INT TERM HUP
rm -rf "$RUN_DIR"
mkdir -p "$RUN_DIR"
cp -a "$BUNDLE/." "$RUN_DIR/"
ENGINE="/$RUN_REL/bin/engine"

# /proc is the one mount needed: the dynamic loader finds a program's own $ORIGIN through
# /proc/self/exe (without it bin/engine's RPATH $ORIGIN/../lib is silently dropped; ldd still
# looks fine because it passes the path explicitly). Every real system has /proc.
mount -t proc proc "$CACHE/proc" || skip "cannot mount /proc in the chroot (no privilege for mount here)"

# env -i: nothing from this machine's environment (LD_LIBRARY_PATH, TESSERA_*) reaches inside.
in_chroot() { chroot "$CACHE" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C "$@"; }

# What the target lacks: which bundled libraries the bare system has no copy of at all.
absent=() present=()
shopt -s nullglob
for lib in "$BUNDLE"/lib/*.so*; do
  name=$(basename "$lib")
  [ "$name" = libtessera_core.so ] && continue
  if in_chroot /bin/sh -c "ls /usr/lib/*/$name /lib/*/$name >/dev/null 2>&1"; then present+=("$name")
  else absent+=("$name"); fi
done
say "bundled libraries the chroot does not have: ${absent[*]:-none}"
say "bundled libraries the chroot has its own copy of (the bundle's are used): ${present[*]:-none}"

say "ldd inside the chroot:"
ldd_out=$(in_chroot ldd "$ENGINE" 2>&1) || fail "ldd failed in the chroot: $ldd_out"
echo "$ldd_out" | sed 's/^/  /'
! grep -q "not found" <<< "$ldd_out" || fail "unresolved libraries inside the chroot"
# Everything but glibc must come from the bundle, not from the chroot's own /usr/lib.
if grep -E '=> /(usr/)?lib' <<< "$ldd_out" | grep -vE '=> /(usr/)?lib[^ ]*/(libc|libm|libdl|libpthread|librt|libresolv|libutil|libmvec)\.so'; then
  fail "the lines above resolve to the chroot's libraries instead of the bundle's"
fi

say "\$ engine --version"
out=$(in_chroot "$ENGINE" --version 2>&1) || fail "engine --version failed: $out"
echo "$out"
grep -q '^engine [0-9]' <<< "$out" || fail "unexpected --version output"

say "\$ engine devices -v"
set +e
out=$(in_chroot "$ENGINE" devices -v 2>&1)
rc=$?
set -e
echo "$out"
if [ -f "$BUNDLE/lib/tessera/backends/libtessera_backend_cpu.so" ]; then
  [ "$rc" -eq 0 ] || fail "engine devices -v exited $rc"
  grep -qF "/$RUN_REL/lib/tessera/backends/libtessera_backend_cpu.so" <<< "$out" ||
    fail "devices does not list the cpu backend from /$RUN_REL"
else
  say "note: the bundle has no CPU plugin; devices exited $rc and is not required to list one"
fi

# libcurl is not bundled: `engine pull` dlopens the system's. A bare minbase has none, so pull
# must say what to install and fail, not crash.
if in_chroot /bin/sh -c "ls /usr/lib/*/libcurl*.so.4 /lib/*/libcurl*.so.4 >/dev/null 2>&1"; then
  say "note: the chroot has a libcurl; the no-libcurl message is not checked"
else
  say "\$ engine pull tessera-test/none   (no libcurl in the chroot)"
  set +e
  out=$(in_chroot HF_HUB_CACHE=/tmp/hf "$ENGINE" pull tessera-test/none 2>&1)
  rc=$?
  set -e
  echo "$out"
  [ "$rc" -eq 1 ] || fail "engine pull without libcurl exited $rc (want 1)"
  grep -qF "downloads need libcurl" <<< "$out" || fail "engine pull without libcurl does not say what it needs"
fi
say "PASS: the bundle runs in a bare $SUITE minbase chroot at '/$RUN_REL' (test took $(since "$T0")s)"
