# libtessera_core.so: IR, planner, scheduler, executor, plugin loader, settings, logging, model
# loading. Vendor runtimes (CUDA, Vulkan, OpenCL, Level Zero) are never linked here.
add_library(tessera_core SHARED
  src/ir.cc
  src/ir_validate.cc
  src/planner.cc
  src/plugin_loader.cc
  src/log.cc
)
foreach(extra device.cc scheduler.cc executor.cc settings.cc graph_serialize.cc kv_cache.cc)
  if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/src/${extra})
    target_sources(tessera_core PRIVATE src/${extra})
  endif()
endforeach()
target_include_directories(tessera_core PUBLIC
  $<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}/include> $<INSTALL_INTERFACE:include>)
target_link_libraries(tessera_core
  PUBLIC tessera_base tessera_plugin_api spdlog::spdlog fmt::fmt nlohmann_json::nlohmann_json
  PRIVATE tessera_graph_proto Boost::filesystem ${CMAKE_DL_LIBS} Threads::Threads)
if(TARGET tessera_model_io)
  target_link_libraries(tessera_core PUBLIC tessera_model_io)
endif()
target_compile_definitions(tessera_core PRIVATE
  TESSERA_SYSTEM_BACKEND_DIR="${CMAKE_INSTALL_FULL_LIBDIR}/tessera/backends"
  TESSERA_VERSION="${PROJECT_VERSION}")
set_target_properties(tessera_core PROPERTIES
  BUILD_RPATH "$ORIGIN" INSTALL_RPATH "$ORIGIN")
tessera_target_defaults(tessera_core)
install(TARGETS tessera_core LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT core)

if(TESSERA_BUILD_TESTS)
  foreach(t ir planner plugin_loader settings scheduler executor)
    if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/src/${t}_test.cc)
      tessera_test(NAME core_${t}_test SOURCES src/${t}_test.cc LIBS tessera_core)
    endif()
  endforeach()
endif()
