# The plugin SDK as an installed CMake package: find_package(Tessera COMPONENTS PluginSDK).
# Included from backends/common/CMakeLists.txt once tessera_backend_common exists. Everything here
# is in the `sdk` install component, so `cmake --install <build> --component sdk --prefix P` gives:
#   P/include/tessera/{plugin_api.h,quant_formats.h,backend/*.h}   (ABI + helper headers)
#   P/share/tessera/graph.proto                                    (compile-style subgraph schema)
#   P/lib/libtessera_backend_common.a                              (validators, ABI boilerplate)
#   P/bin/op_conformance_test                                      (tests/conformance)
#   P/lib/cmake/Tessera/TesseraConfig.cmake (+ version, targets)
include(CMakePackageConfigHelpers)

# Tessera::PluginSDK: the ABI headers plus the helper library. In the tree the same name is an
# alias, so backends/skeleton/CMakeLists.txt reads the same inside and outside the tree.
add_library(tessera_plugin_sdk INTERFACE)
target_link_libraries(tessera_plugin_sdk INTERFACE tessera_backend_common tessera_plugin_api)
add_library(Tessera::PluginSDK ALIAS tessera_plugin_sdk)
set_target_properties(tessera_plugin_api PROPERTIES EXPORT_NAME plugin_api)
set_target_properties(tessera_backend_common PROPERTIES EXPORT_NAME backend_common)
set_target_properties(tessera_plugin_sdk PROPERTIES EXPORT_NAME PluginSDK)

install(TARGETS tessera_plugin_api tessera_backend_common tessera_plugin_sdk
  EXPORT TesseraPluginSDKTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT sdk)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/backends/common/include/tessera/backend
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/tessera COMPONENT sdk)

set(_tsr_cmake_dir ${CMAKE_INSTALL_LIBDIR}/cmake/Tessera)
install(EXPORT TesseraPluginSDKTargets NAMESPACE Tessera:: DESTINATION ${_tsr_cmake_dir}
  COMPONENT sdk)

# The plugin ABI version, read from the header so the package can never disagree with it.
file(STRINGS ${PROJECT_SOURCE_DIR}/plugins-api/include/tessera/plugin_api.h _tsr_abi_lines
  REGEX "^#define TSR_ABI_(MAJOR|MINOR|MINOR_FLOOR) ")
foreach(_line IN LISTS _tsr_abi_lines)
  if(_line MATCHES "^#define (TSR_ABI_[A-Z_]+) ([0-9]+)")
    set(${CMAKE_MATCH_1} ${CMAKE_MATCH_2})
  endif()
endforeach()
if(NOT DEFINED TSR_ABI_MAJOR OR NOT DEFINED TSR_ABI_MINOR)
  message(FATAL_ERROR "could not read TSR_ABI_MAJOR/MINOR from plugin_api.h")
endif()

set(TESSERA_SDK_INCLUDE_DIR ${CMAKE_INSTALL_INCLUDEDIR})
set(TESSERA_SDK_DATA_DIR ${CMAKE_INSTALL_DATADIR}/tessera)
set(TESSERA_SDK_BIN_DIR ${CMAKE_INSTALL_BINDIR})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/TesseraConfig.cmake.in
  ${CMAKE_BINARY_DIR}/sdk/TesseraConfig.cmake
  INSTALL_DESTINATION ${_tsr_cmake_dir}
  PATH_VARS TESSERA_SDK_INCLUDE_DIR TESSERA_SDK_DATA_DIR TESSERA_SDK_BIN_DIR TESSERA_BACKEND_SUBDIR)
# While Tessera is 0.x a minor release may change the SDK, so a request for 0.1 accepts 0.1.z
# only. (Whether an engine loads a plugin is the ABI's rule, TSR_ABI_*, not this version's.)
write_basic_package_version_file(${CMAKE_BINARY_DIR}/sdk/TesseraConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_BINARY_DIR}/sdk/TesseraConfig.cmake
  ${CMAKE_BINARY_DIR}/sdk/TesseraConfigVersion.cmake
  DESTINATION ${_tsr_cmake_dir} COMPONENT sdk)
