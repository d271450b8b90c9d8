// Subcommand registration. Each command file adds its CLI11 subcommand and its handler.
#ifndef TESSERA_TOOLS_ENGINE_COMMANDS_H_
#define TESSERA_TOOLS_ENGINE_COMMANDS_H_

#include <functional>

#include "cli_common.h"

namespace tessera::cli {

// A handler runs after parsing when its subcommand was given; returns the process exit code.
using Handler = std::function<int()>;

Handler AddDevicesCommand(CLI::App& app, GlobalFlags* flags);
Handler AddConfigCommand(CLI::App& app, GlobalFlags* flags);
Handler AddRunCommand(CLI::App& app, GlobalFlags* flags);
Handler AddBenchCommand(CLI::App& app, GlobalFlags* flags);
Handler AddServeCommand(CLI::App& app, GlobalFlags* flags);
Handler AddTokenizeCommands(CLI::App& app, GlobalFlags* flags);
Handler AddBenchServeCommand(CLI::App& app, GlobalFlags* flags);  // cmd_bench_serve.cc
Handler AddModelCommands(CLI::App& app, GlobalFlags* flags);      // pull/list/show/rm/ps
Handler AddEmbedCommands(CLI::App& app, GlobalFlags* flags);      // embed/rerank

}  // namespace tessera::cli

#endif  // TESSERA_TOOLS_ENGINE_COMMANDS_H_
