# Shared build helpers: warnings, sanitizers, tests, plugins, and the configure summary.

function(tessera_summary line)
  set_property(GLOBAL APPEND PROPERTY TESSERA_SUMMARY "${line}")
endfunction()
function(tessera_print_summary)
  get_property(lines GLOBAL PROPERTY TESSERA_SUMMARY)
  message(STATUS "Tessera configuration:")
  foreach(l IN LISTS lines)
    message(STATUS "  ${l}")
  endforeach()
endfunction()

set(TESSERA_WARNINGS -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers)
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  # -Wrestrict: GCC 12 false positives inside std::string's operator+ at -O2/-O3 (GCC bug 105329).
  list(APPEND TESSERA_WARNINGS -Wshadow=local -Wno-restrict)
endif()
if(TESSERA_WERROR)
  list(APPEND TESSERA_WARNINGS -Werror)
endif()

if(TESSERA_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()

# Our own targets get the warning set; third-party headers are included as SYSTEM by CMake.
function(tessera_target_defaults target)
  target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CXX,C>:${TESSERA_WARNINGS}>)
endfunction()

# tessera_test(NAME name SOURCES a.cc b.cc LIBS lib... [ENV K=V...] [LABELS l...])
# One gtest binary = one ctest entry.
function(tessera_test)
  cmake_parse_arguments(T "" "NAME" "SOURCES;LIBS;ENV;LABELS" ${ARGN})
  add_executable(${T_NAME} ${T_SOURCES})
  tessera_target_defaults(${T_NAME})
  target_link_libraries(${T_NAME} PRIVATE ${T_LIBS} GTest::gtest GTest::gtest_main GTest::gmock)
  add_test(NAME ${T_NAME} COMMAND ${T_NAME})
  set_tests_properties(${T_NAME} PROPERTIES ENVIRONMENT "${T_ENV}" LABELS "${T_LABELS}")
endfunction()

# tessera_backend_plugin(NAME cpu SOURCES ...): a MODULE library libtessera_backend_<name>.so,
# hidden visibility, $ORIGIN rpath, placed where the loader looks next to the core library.
function(tessera_backend_plugin)
  cmake_parse_arguments(P "" "NAME" "SOURCES" ${ARGN})
  set(target tessera_backend_${P_NAME})
  add_library(${target} MODULE ${P_SOURCES})
  tessera_target_defaults(${target})
  target_link_libraries(${target} PRIVATE tessera_plugin_api)
  set_target_properties(${target} PROPERTIES
    PREFIX "lib"
    C_VISIBILITY_PRESET hidden CXX_VISIBILITY_PRESET hidden VISIBILITY_INLINES_HIDDEN ON
    LIBRARY_OUTPUT_DIRECTORY ${TESSERA_BACKEND_OUTPUT_DIR}
    BUILD_RPATH "$ORIGIN;$ORIGIN/../.." INSTALL_RPATH "$ORIGIN;$ORIGIN/../..")
  target_link_options(${target} PRIVATE -Wl,--no-undefined)
  install(TARGETS ${target} LIBRARY DESTINATION ${TESSERA_BACKEND_SUBDIR} COMPONENT ${P_NAME})
endfunction()

# Resolves an AUTO/ON/OFF switch against whether the SDK was found; records why in the summary.
function(tessera_feature var found what why_missing)
  if(${var} STREQUAL "OFF")
    set(${var}_ENABLED OFF PARENT_SCOPE)
    tessera_summary("${what}: skipped (disabled with -D${var}=OFF)")
  elseif(found)
    set(${var}_ENABLED ON PARENT_SCOPE)
    tessera_summary("${what}: SDK found")
  elseif(${var} STREQUAL "ON")
    message(FATAL_ERROR "${what} requested (-D${var}=ON) but ${why_missing}")
  else()
    set(${var}_ENABLED OFF PARENT_SCOPE)
    tessera_summary("${what}: skipped (${why_missing})")
  endif()
endfunction()

# tessera_add_subdirs(a b c): add_subdirectory for each existing folder with a CMakeLists.txt,
# except those named in TESSERA_SKIP_DIRS (a developer's escape hatch while a folder is mid-edit).
set(TESSERA_SKIP_DIRS "" CACHE STRING "Sub-folders to leave out of the build (developer use)")
function(tessera_add_subdirs)
  foreach(sub ${ARGN})
    if(sub IN_LIST TESSERA_SKIP_DIRS)
      tessera_summary("${sub}: skipped (TESSERA_SKIP_DIRS)")
      continue()
    endif()
    if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/${sub}/CMakeLists.txt)
      add_subdirectory(${sub})
    endif()
  endforeach()
endfunction()
