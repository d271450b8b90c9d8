// `--quantize` on engine run / bench / serve: a shorthand for the `quantize` setting.
#ifndef TESSERA_TOOLS_ENGINE_QUANTIZE_FLAG_H_
#define TESSERA_TOOLS_ENGINE_QUANTIZE_FLAG_H_

#include <string>

#include "cli_common.h"
#include "tessera/core/model/quantize.h"
#include "tessera/core/settings.h"

namespace tessera::cli {

// Applies `flag` (when given) to `settings` at command-line precedence and returns the resolved
// quantization; a bad value is InvalidArgument naming the valid ones (none, q8, q4).
inline StatusOr<QuantKind> QuantizeSetting(Settings* settings, const std::string& flag) {
  if (!flag.empty())
    TSR_RETURN_IF_ERROR(settings->Set("quantize", flag, SettingSource::kCommandLine));
  return ParseQuantKind(settings->GetString("quantize"));
}

// The global flags plus, when weights are quantized, the CPU plugin option int8_dot=on: matmuls
// against Q8/Q4 weights then quantize activations to int8 too and use integer dot products
// (docs/quantization.md). Without quantized weights nothing changes.
inline GlobalFlags WithInt8Dot(const GlobalFlags& flags, QuantKind kind) {
  GlobalFlags out = flags;
  if (kind != QuantKind::kNone)
    out.backend_opts.insert(out.backend_opts.begin(), "cpu.int8_dot=on");
  return out;
}

}  // namespace tessera::cli

#endif  // TESSERA_TOOLS_ENGINE_QUANTIZE_FLAG_H_
