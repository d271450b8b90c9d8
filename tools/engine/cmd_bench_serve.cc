// Placeholder: the command is being written.
#include "commands.h"

namespace tessera::cli {

Handler AddBenchServeCommand(CLI::App& /*app*/, GlobalFlags* /*flags*/) {
  return [] { return -1; };
}

}  // namespace tessera::cli
