// engine: the Tessera command line. Subcommands live in cmd_*.cc; global flags (--backend,
// --backend-path, ...) are accepted before or after the subcommand.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "commands.h"

#ifndef TESSERA_VERSION
#define TESSERA_VERSION "0.0.0"
#endif

int main(int argc, char** argv) {
  using namespace tessera::cli;
  CLI::App app{"Tessera: run Hugging Face models on any hardware", "engine"};
  app.set_version_flag("--version", std::string("engine ") + TESSERA_VERSION);
  app.require_subcommand(1);
  GlobalFlags flags;
  AddGlobalFlags(app, &flags);
  std::vector<Handler> handlers = {
      AddDevicesCommand(app, &flags),    AddConfigCommand(app, &flags),
      AddRunCommand(app, &flags),        AddTokenizeCommands(app, &flags),
      AddBenchCommand(app, &flags),      AddServeCommand(app, &flags),
      AddBenchServeCommand(app, &flags), AddModelCommands(app, &flags),
      AddEmbedCommands(app, &flags)};
  for (CLI::App* sub : app.get_subcommands({})) sub->fallthrough();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  for (auto& h : handlers) {
    int rc = h();
    if (rc >= 0) return rc;
  }
  return 0;
}
