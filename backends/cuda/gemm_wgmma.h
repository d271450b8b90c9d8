// Prefill GEMM on wgmma (sm_90a; k_gemm_wgmma.cu): the bf16-weight MATMUL with the canonical
// order of k_matmul_bf16.cu, for Hopper (compute capability 9.0) only. LaunchGemmBf16 takes it
// through GemmTiledAuto / LaunchGemmBf16Tiled (k_gemm_bf16.cu) where it is estimated faster.
#ifndef TESSERA_BACKENDS_CUDA_GEMM_WGMMA_H_
#define TESSERA_BACKENDS_CUDA_GEMM_WGMMA_H_

#include <cuda_runtime_api.h>

#include <cstdint>

#include "backends/cuda/launch.h"

namespace tessera::cuda {

// Bytes of the slot-permuted planes for p (terms x M rows x K rounded up to 32, bf16).
int64_t WgmmaPlaneBytes(const MatmulParams& p, int terms);
// x split into `terms` bf16 pieces (the same pieces as LaunchSplitBf16), each k32 block stored in
// the order the wgmma k16 steps take their slots: [step j][slot half h][q][2] (see the .cu).
cudaError_t LaunchSplitBf16Wgmma(const MatmulParams& p, int terms, uint16_t* planes,
                                 cudaStream_t stream);
// The GEMM over those planes; config 0 .. GemmWgmmaConfigs() - 1. cudaErrorNotSupported unless
// the current device is compute capability 9.0 (the only one sm_90a code runs on).
int GemmWgmmaConfigs();
// Whether the current device runs the wgmma kernels (compute capability 9.0); cached per device.
bool GemmWgmmaAvailable();
// Candidates of GemmTiledAuto's estimate (k_gemm_bf16.cu): config, tile (weight rows x
// tokens), TFLOP/s on a full H100 at M = 2048 (lab/NOTES.md "wgmma", results/wgmma_lab_h100_run2).
struct WgmmaCandidate {
  int config;
  int64_t bn, bm;
  double tflops;
};
inline constexpr WgmmaCandidate kWgmmaAuto1[] = {
    {5, 256, 128, 255.0}, {6, 256, 64, 220.0}, {0, 128, 128, 215.0}, {1, 128, 64, 158.0}};
inline constexpr int kWgmmaAuto1Count = 4;
inline constexpr WgmmaCandidate kWgmmaAuto3[] = {
    {6, 256, 64, 110.0}, {0, 128, 128, 85.0}, {1, 128, 64, 74.0}};
inline constexpr int kWgmmaAuto3Count = 3;
cudaError_t LaunchGemmWgmma(const MatmulParams& p, int terms, const uint16_t* planes, int config,
                            cudaStream_t stream);

}  // namespace tessera::cuda

#endif  // TESSERA_BACKENDS_CUDA_GEMM_WGMMA_H_
