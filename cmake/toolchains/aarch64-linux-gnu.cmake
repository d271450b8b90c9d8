# Cross-compiling for 64-bit ARM Linux (aarch64) on a Debian amd64 host with Debian's cross
# toolchain (crossbuild-essential-arm64) and the arm64 multiarch -dev packages
# (ci/install-deps.sh --arm64 installs both). Libraries and CMake packages come from
# /usr/lib/aarch64-linux-gnu; headers from /usr/include; host tools (protoc) stay amd64.
#
#   cmake -S . -B build/arm64 -G Ninja \
#     -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/aarch64-linux-gnu.cmake
#
# Test binaries run under qemu-user: CMAKE_CROSSCOMPILING_EMULATOR makes ctest prefix every
# test executable with qemu-aarch64. With libc6:arm64 installed the arm64 loader sits at
# /lib/ld-linux-aarch64.so.1 and finds the multiarch libraries itself, so no -L sysroot is needed.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(TESSERA_CROSS_TRIPLE aarch64-linux-gnu)

set(CMAKE_C_COMPILER ${TESSERA_CROSS_TRIPLE}-gcc)
set(CMAKE_CXX_COMPILER ${TESSERA_CROSS_TRIPLE}-g++)
# Debian multiarch: find_library/find_package look in /usr/lib/aarch64-linux-gnu first, and the
# amd64 copies in /usr/lib/x86_64-linux-gnu are never on the search path.
set(CMAKE_LIBRARY_ARCHITECTURE ${TESSERA_CROSS_TRIPLE})

# Programs (protoc, python3, bash) are the host's; libraries, headers and packages the target's.
# No CMAKE_FIND_ROOT_PATH: multiarch puts both under /usr, so the root is simply /.
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)

# pkg-config (PCRE2, utf8proc) must read the arm64 .pc files only.
set(ENV{PKG_CONFIG_LIBDIR} "/usr/lib/${TESSERA_CROSS_TRIPLE}/pkgconfig:/usr/share/pkgconfig")
set(ENV{PKG_CONFIG_PATH} "")

find_program(TESSERA_QEMU_AARCH64 qemu-aarch64)
if(TESSERA_QEMU_AARCH64)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${TESSERA_QEMU_AARCH64})
endif()
