# OEM packages through CPack (`cpack` in a built tree, or `cmake --build B --target package`):
#   tessera-core      engine + libtessera_core + the CPU plugin + the bundled default model
#   tessera-<backend> one per backend plugin this build made (cuda, vulkan, opencl, level-zero, ...)
#   tessera-sdk       the plugin SDK (headers, helper library, CMake package, conformance runner)
# each as a .deb (installs under /opt/tessera) and a .tar.gz (one top folder, runs where it is
# extracted). Core and backend packages are self-contained like ci/bundle.sh's bundle: every
# non-glibc, non-driver library they need is copied into lib/ and every RPATH is $ORIGIN-relative
# (cmake/TesseraPackagingFixup.sh, run at the end of each component's install while CPack stages
# it). A backend package holds only its plugin and whatever that needs beyond the core package,
# and depends on it.
#
# Included at the end of the top-level CMakeLists.txt, once every backend folder has been added:
# backend components are found by walking backends/*, so a new tessera_backend_plugin() gets its
# package with no edit here.

# Every backend plugin target (MODULE libraries named tessera_backend_<id>); tessera_backend_plugin()
# installs each into component <id>.
set(_tsr_pkg_backends "")
get_property(_tsr_pkg_dirs DIRECTORY ${PROJECT_SOURCE_DIR}/backends PROPERTY SUBDIRECTORIES)
foreach(_dir ${_tsr_pkg_dirs})
  get_property(_targets DIRECTORY ${_dir} PROPERTY BUILDSYSTEM_TARGETS)
  foreach(_t ${_targets})
    get_target_property(_type ${_t} TYPE)
    if(_t MATCHES "^tessera_backend_(.+)$" AND _type STREQUAL "MODULE_LIBRARY")
      list(APPEND _tsr_pkg_backends ${CMAKE_MATCH_1})
    endif()
  endforeach()
endforeach()
set(TESSERA_PACKAGE_BACKENDS ${_tsr_pkg_backends} CACHE INTERNAL "backend plugins packaged")

set(CPACK_PACKAGE_NAME tessera)
set(CPACK_PACKAGE_VENDOR "Tessera")
set(CPACK_PACKAGE_CONTACT "Tessera maintainers <tessera@localhost>")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "Tessera LLM inference engine")
set(CPACK_PACKAGE_FILE_NAME "tessera-${PROJECT_VERSION}-linux-${CMAKE_SYSTEM_PROCESSOR}")
set(CPACK_GENERATOR "DEB;TGZ")
set(CPACK_SOURCE_GENERATOR "")
set(CPACK_THREADS 0)  # xz/gzip on every core

# One package per group: `core` holds the core and CPU components, every backend and the SDK
# are groups of their own.
set(CPACK_COMPONENTS_GROUPING ONE_PER_GROUP)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_ARCHIVE_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL core)
if("cpu" IN_LIST _tsr_pkg_backends)
  list(APPEND CPACK_COMPONENTS_ALL cpu)
endif()
foreach(_b ${_tsr_pkg_backends})
  if(NOT _b STREQUAL "cpu")
    list(APPEND CPACK_COMPONENTS_ALL ${_b})
  endif()
endforeach()
list(APPEND CPACK_COMPONENTS_ALL sdk)

# Debian: /opt/tessera is the relocatable tree as is (bin/engine, lib/, share/tessera/models);
# the tarballs have the same tree under tessera-<version>-linux-<arch>/
# (TesseraPackagingConfig.cmake sets the prefix per generator).
set(CPACK_PROJECT_CONFIG_FILE ${PROJECT_SOURCE_DIR}/cmake/TesseraPackagingConfig.cmake)
set(TESSERA_PACKAGING_FIXUP ${PROJECT_SOURCE_DIR}/cmake/TesseraPackagingFixup.sh)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION misc)
# The bundled libraries replace Debian's, so only glibc is a dependency (the fixup script checks
# that no file needs a newer glibc than this).
set(TESSERA_PACKAGE_GLIBC_FLOOR 2.36)  # Debian 12's libstdc++ needs GLIBC_2.36
set(CPACK_DEBIAN_PACKAGE_DEPENDS "libc6 (>= ${TESSERA_PACKAGE_GLIBC_FLOOR})")
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS OFF)
# xz: the core .deb is 6.7 MB instead of 8.3 MB with gzip; every dpkg since Debian 6 reads it.
set(CPACK_DEBIAN_COMPRESSION_TYPE xz)

# Per-package Debian fields (CPack reads variables at include(CPack), so they come first).
set(CPACK_DEBIAN_CORE_DESCRIPTION "Tessera LLM inference engine: engine CLI, core library, CPU backend
 Self-contained under /opt/tessera (bundled libraries, relative RPATHs); /opt/tessera/bin/engine.
 Downloading models (engine pull) uses the system's libcurl and libcrypto.")
# `engine pull` dlopens libcurl.so.4 (or Debian's GnuTLS/NSS flavour) and libcrypto.so.3 from the
# system (tools/hub/runtime_libs.h); the package bundles neither (with their dependencies they
# were about 16 MB). Recommends, not Depends: everything else (local and cached models, the
# server, bench) runs without them, apt installs Recommends by default, and a minimal or
# air-gapped image can leave them out (--no-install-recommends). 7.85: CURLOPT_PROTOCOLS_STR.
set(CPACK_DEBIAN_CORE_PACKAGE_RECOMMENDS "libcurl4 (>= 7.85.0) | libcurl3-gnutls (>= 7.85.0), libssl3")
foreach(_b ${_tsr_pkg_backends})
  if(_b STREQUAL "cpu")
    continue()
  endif()
  string(TOUPPER ${_b} _B)
  # CPackDeb reads CPACK_DEBIAN_<TOUPPER(component)>_*, hyphen and all: LEVEL-ZERO, not LEVEL_ZERO.
  set(CPACK_DEBIAN_${_B}_PACKAGE_DEPENDS "tessera-core (= ${PROJECT_VERSION})")
  set(CPACK_DEBIAN_${_B}_DESCRIPTION "Tessera ${_b} backend plugin
 Loaded by the engine from /opt/tessera/lib/tessera/backends; the vendor driver comes from the system.")
endforeach()
set(CPACK_DEBIAN_SDK_PACKAGE_DEPENDS "")
set(CPACK_DEBIAN_SDK_DESCRIPTION "Tessera plugin SDK: ABI headers, helper library, conformance runner
 find_package(Tessera COMPONENTS PluginSDK) with CMAKE_PREFIX_PATH=/opt/tessera.")

include(CPack)

cpack_add_component_group(core DISPLAY_NAME "Tessera engine"
  DESCRIPTION "engine, libtessera_core, the CPU backend plugin and the default model")
cpack_add_component(core GROUP core DISPLAY_NAME "Engine and core library")
foreach(_b ${_tsr_pkg_backends})
  if(_b STREQUAL "cpu")
    cpack_add_component(cpu GROUP core DISPLAY_NAME "CPU backend plugin")
  else()
    cpack_add_component_group(${_b} DISPLAY_NAME "Tessera ${_b} backend")
    cpack_add_component(${_b} GROUP ${_b} DISPLAY_NAME "${_b} backend plugin" DEPENDS core)
  endif()
endforeach()
cpack_add_component_group(sdk DISPLAY_NAME "Tessera plugin SDK")
cpack_add_component(sdk GROUP sdk DISPLAY_NAME "Plugin SDK")

# Self-contained packages: at the end of a component's install, while CPack stages it, the fixup
# bundles what the component's files need and fixes RPATHs. CPack packs the files a component's
# install created, so the bundled libraries land in that component's package. PROVIDED are the
# build-tree files of what the component's package depends on (the core's engine, library and
# CPU plugin): their libraries are in tessera-core already and never ship twice.
function(_tessera_package_fixup component)
  list(JOIN ARGN "\" \"" provided)
  install(CODE "
    if(DEFINED ENV{TESSERA_CPACK_STAGING})
      execute_process(COMMAND bash \"${TESSERA_PACKAGING_FIXUP}\"
        \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}\" ${component} ${TESSERA_PACKAGE_GLIBC_FLOOR}
        \"${provided}\" RESULT_VARIABLE _rc)
      if(NOT _rc EQUAL 0)
        message(FATAL_ERROR \"packaging: making component '${component}' self-contained failed\")
      endif()
    endif()" COMPONENT ${component})
endfunction()
if(TARGET engine)
  set(_tsr_core_files $<TARGET_FILE:engine> $<TARGET_FILE:tessera_core>)
  _tessera_package_fixup(core)
  if("cpu" IN_LIST _tsr_pkg_backends)
    _tessera_package_fixup(cpu ${_tsr_core_files})
    list(APPEND _tsr_core_files $<TARGET_FILE:tessera_backend_cpu>)
  endif()
  foreach(_b ${_tsr_pkg_backends})
    if(NOT _b STREQUAL "cpu")
      _tessera_package_fixup(${_b} ${_tsr_core_files})
    endif()
  endforeach()
endif()

list(REMOVE_ITEM _tsr_pkg_backends cpu)
list(JOIN _tsr_pkg_backends " " _tsr_pkg_list)
tessera_summary("Packages (cpack, DEB and TGZ): core (+ cpu), sdk, backends: ${_tsr_pkg_list}")

# package_test: cpack, then the extracted core tarball must run where it lies (ldd, `engine
# devices`, `engine run` on the default model), and the sizes must meet the targets.
if(TESSERA_BUILD_TESTS AND TARGET engine)
  set(_tsr_pkg_files $<TARGET_FILE:engine> $<TARGET_FILE:tessera_core>)
  foreach(_b ${TESSERA_PACKAGE_BACKENDS})
    list(APPEND _tsr_pkg_files $<TARGET_FILE:tessera_backend_${_b}>)
  endforeach()
  foreach(_t op_conformance_test tessera_backend_common)
    if(TARGET ${_t})
      list(APPEND _tsr_pkg_files $<TARGET_FILE:${_t}>)
    endif()
  endforeach()
  add_test(NAME package_test
    COMMAND bash ${PROJECT_SOURCE_DIR}/cmake/TesseraPackagingTest.sh ${CMAKE_BINARY_DIR}
      ${PROJECT_SOURCE_DIR})
  set_tests_properties(package_test PROPERTIES
    LABELS "install;package" REQUIRED_FILES "${_tsr_pkg_files}" TIMEOUT 900)
endif()
