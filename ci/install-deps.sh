#!/usr/bin/env bash
# Installs every Debian 12 package Tessera builds, tests and packages with.
# Idempotent: packages already present are skipped; apt runs only when something is missing.
set -euo pipefail

PKGS=(
  build-essential cmake ninja-build ccache pkg-config git python3 clang clang-format
  libclang-rt-14-dev
  libspdlog-dev libfmt-dev nlohmann-json3-dev libcli11-dev
  libboost-dev libboost-filesystem-dev
  libprotobuf-dev protobuf-compiler
  libgtest-dev libgmock-dev libbenchmark-dev
  libhwy-dev libpcre2-dev libutf8proc-dev
  libcurl4-openssl-dev libssl-dev libsndfile1-dev libsamplerate0-dev libstb-dev
  libvulkan-dev glslc mesa-vulkan-drivers
  ocl-icd-opencl-dev opencl-headers pocl-opencl-icd
  libze-dev llvm-spirv-14
  python3-jinja2 debootstrap file patchelf
)

# --arm64: instead, the aarch64 cross toolchain, qemu-user and the arm64 multiarch -dev packages that
# ci/arm64.sh cross-builds the core, the CPU plugin and their tests with (protoc stays amd64).
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
if [ "${1:-}" = --arm64 ]; then
  PKGS=(crossbuild-essential-arm64 qemu-user
    libspdlog-dev:arm64 libfmt-dev:arm64 libboost-dev:arm64 libboost-filesystem-dev:arm64
    libprotobuf-dev:arm64 libgtest-dev:arm64 libgmock-dev:arm64 libhwy-dev:arm64
    libpcre2-dev:arm64 libutf8proc-dev:arm64 libcurl4-openssl-dev:arm64 libssl-dev:arm64)
  dpkg --print-foreign-architectures | grep -qx arm64 || $SUDO dpkg --add-architecture arm64
fi

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PKGS[@]} packages present"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
