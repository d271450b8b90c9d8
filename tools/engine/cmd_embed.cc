// Placeholder: the command is being written.
#include "commands.h"

namespace tessera::cli {

Handler AddEmbedCommands(CLI::App& /*app*/, GlobalFlags* /*flags*/) {
  return [] { return -1; };
}

}  // namespace tessera::cli
