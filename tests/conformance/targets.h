// Discovery of the backends the conformance suite runs against.
//
// Kept small and separate on purpose: the lead will later replace the discovery below with the
// core plugin loader; everything else in the suite only sees ConformanceTargets().
#ifndef TESSERA_TESTS_CONFORMANCE_TARGETS_H_
#define TESSERA_TESTS_CONFORMANCE_TARGETS_H_

#include <string>
#include <vector>

#include "tessera/plugin_api.h"

namespace tessera::conformance {

// One opened device of one plugin.
struct ConformanceTarget {
  std::string name;           // the plugin id ("cpu"), with "_<index>" appended for devices past 0
  const tsr_plugin_api* api;  // the plugin's table; valid for the life of the process
  tsr_device* dev;            // open until process exit
  std::string plugin_id;      // api->id, for rules that depend on the backend ("cpu")
};

// Loads, once, every plugin named in env TESSERA_CONFORMANCE_PLUGINS (':'-separated .so paths)
// or, when that is unset or empty, every *.so in the build's backend folder
// (TESSERA_CONFORMANCE_DEFAULT_DIR) or, where that does not exist (an installed SDK), in
// <dir of the executable>/../lib/tessera/backends. Plugins that fail to load or have no device are
// reported on stderr and left out. Thread-safe (a function-local static); the returned reference
// stays valid until exit, when devices are closed and contexts destroyed.
const std::vector<ConformanceTarget>& ConformanceTargets();

}  // namespace tessera::conformance

#endif  // TESSERA_TESTS_CONFORMANCE_TARGETS_H_
