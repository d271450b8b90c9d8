# CPACK_PROJECT_CONFIG_FILE: CPack includes this once per generator, with CPACK_GENERATOR set to
# that generator, before it stages the components.
# - The .deb installs the relocatable tree under /opt/tessera. Every tarball holds it under the
#   same top folder, tessera-<version>-linux-<arch>/, so a backend's tarball extracted next to
#   the core one drops its plugin into the core's lib/tessera/backends.
# - TESSERA_CPACK_STAGING tells the install-time fixup (TesseraPackaging.cmake) that CPack is
#   staging, so a plain `cmake --install` never bundles libraries into a system prefix. CPack
#   runs the install scripts in its own process, so they see this environment variable.
if(CPACK_GENERATOR STREQUAL "DEB")
  set(CPACK_PACKAGING_INSTALL_PREFIX /opt/tessera)
else()
  set(CPACK_PACKAGING_INSTALL_PREFIX "/${CPACK_PACKAGE_FILE_NAME}")
endif()
set(ENV{TESSERA_CPACK_STAGING} "${CPACK_GENERATOR}")
