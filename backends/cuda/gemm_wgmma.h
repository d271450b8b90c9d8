// Prefill GEMM on wgmma (sm_90a; k_gemm_wgmma.cu): the bf16-weight MATMUL with the canonical
// order of k_matmul_bf16.cu, for Hopper (compute capability 9.0) only. LaunchGemmBf16 takes it
// through GemmTiledAuto / LaunchGemmBf16Tiled (k_gemm_bf16.cu) where it is estimated faster.
#ifndef TESSERA_BACKENDS_CUDA_GEMM_WGMMA_H_
#define TESSERA_BACKENDS_CUDA_GEMM_WGMMA_H_

#include <cuda_runtime_api.h>

#include <cstdint>

#include "backends/cuda/launch.h"

namespace tessera::cuda {

// SMs of the current device at first use (0 if unknown): the tile and split choices size their
// grids in waves of it. Cached for the process (one device model a process in practice).
inline int DeviceSms() {
  static const int sms = [] {
    int dev = 0, n = 0;
    if (cudaGetDevice(&dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess)
      return 0;
    return n;
  }();
  return sms;
}

// Peak DRAM bandwidth of the current device in GB/s from the driver's memory clock and bus width
// (2 transfers a clock; 0 if unknown), cached like DeviceSms: the launch rules that were sized on
// the H100 (2,619 MHz x 5,120 bits: ~3,350) and re-sized on the H200 (3,201 MHz x 6,016 bits:
// ~4,810) tell the two apart by it (cu23-x64, cu23-b8).
inline int DevicePeakDramGBs() {
  static const int gbs = [] {
    int dev = 0, khz = 0, bits = 0;
    if (cudaGetDevice(&dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&khz, cudaDevAttrMemoryClockRate, dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&bits, cudaDevAttrGlobalMemoryBusWidth, dev) != cudaSuccess)
      return 0;
    return static_cast<int>(int64_t{khz} * 2 * (bits / 8) / 1000000);
  }();
  return gbs;
}

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
// The TMA configurations (kTmaConfig0 + k_gemm_tma.cu's config;
// lab/results/tma_h100_run{3,4}_lab.log) are ~2x the cp.async ones wherever they run, so they are
// the only candidates: one piece the pipelined 128 x 128 tile (and 64 x 256), three pieces 128 x
// 128 and 128 x 64 (pipelined) for narrow N. With TESSERA_CUDA_GEMM_TMA=0 LaunchGemmWgmma maps them
// to configuration 5 / 6. LaunchGemmBf16Tiled runs them as their persistent twins at M > 64
// (GemmTmaPersistTwin; TESSERA_CUDA_GEMM_PERSIST=0: the plain grid). One piece also the plain
// 128 x 64 tile (config 19, "tma128x64k", unsplit at M > 64), for grids the 128 x 128 tile fills
// badly: its rate makes the estimate pick it where it halves the waves' tile area, e.g. M = 512
// on the 1B q/o, k/v, down and the 8B k/v, M = 2048 on the 1B / 0.5B k/v (cu-gemm13, H100 lab:
// 1B down at M = 512 261 -> 328 TFLOP/s, 1B q/o 207 -> 263; lab/NOTES.md "Prefill GEMM,
// thirteenth session"). TESSERA_CUDA_GEMM_NARROW=0 runs that choice as the 128 x 128 tile.
inline constexpr WgmmaCandidate kWgmmaAuto1[] = {
    {12, 128, 128, 500.0}, {8, 64, 256, 420.0}, {19, 128, 64, 310.0}};
inline constexpr int kWgmmaAuto1Count = 3;
inline constexpr WgmmaCandidate kWgmmaAuto3[] = {{7, 128, 128, 235.0}, {14, 128, 64, 190.0}};
inline constexpr int kWgmmaAuto3Count = 2;
// GemmTiledAuto / LaunchGemmBf16Tiled (k_gemm_bf16.cu) number the wgmma configurations from
// kWgmmaConfig = 64 on; Gemm<T> (k_matmul_bf16.cu) skips its natural-order split for them.
inline constexpr int kGemmTiledWgmma0 = 64;

// Configurations kTmaConfig0 .. GemmWgmmaConfigs() - 1 are the TMA-fed kernels below (config -
// kTmaConfig0); TESSERA_CUDA_GEMM_TMA=0 runs the best cp.async configuration instead (5 with one
// piece, 6 with three), =1 (default) the TMA one.
cudaError_t LaunchGemmWgmma(const MatmulParams& p, int terms, const uint16_t* planes, int config,
                            cudaStream_t stream);
// Name of configuration `config` for the labs ("wg5", "tma128x128", ...).
const char* GemmWgmmaName(int config, int terms);

// TMA-fed wgmma GEMM (k_gemm_tma.cu): the same operands (planes from LaunchSplitBf16Wgmma, bf16
// weights 16-byte aligned with 16-byte row strides), the same canonical order and bits;
// cp.async.bulk.tensor loads with 128-byte swizzle, an mbarrier pipeline with one producer and two
// consumer warpgroups. Config 0 .. GemmTmaConfigs() - 1 (tiles: see the .cu).
inline constexpr int kTmaConfig0 = 7;
int GemmTmaConfigs();
const char* GemmTmaName(int config, int terms);
cudaError_t LaunchGemmTma(const MatmulParams& p, int terms, const uint16_t* planes, int config,
                          cudaStream_t stream);
// Bytes the planes buffer of LaunchGemmTma(p, terms, planes, config) must hold: the planes, and
// for the split-K configurations (12, 13: "tma128x64k", "tma128x64pk") where they split, the
// chunk sums after them (K / 256 x M x N floats; cuda-splitk, lab/NOTES.md "Split-K").
uint64_t GemmTmaScratchBytes(const MatmulParams& p, int terms, int config);
// Whether LaunchGemmWgmma(p, terms, planes, config) ends in TmaCombineKernel (a split-K
// configuration that splits this p), whose last write can add p.res (cuda-agg3).
bool GemmWgmmaSplitCombine(const MatmulParams& p, int terms, int config);
// The x-splitting TMA configurations (14 .. 17: the producer splits x on the fly, no pre-pass,
// `planes` unused; cuda-gemm3, lab/NOTES.md "x split in the TMA producer") run where x suits a
// TMA map (GemmTmaXsplitFits: 16-byte-aligned base and row stride). GemmTmaXsplitTwin: the
// x-splitting configuration with the tile of TMA configuration `config`, or -1.
inline constexpr int kTmaXsplit0 = 14;
bool GemmTmaXsplitFits(const MatmulParams& p);
int GemmTmaXsplitTwin(int config, int terms);
// The persistent configurations (18 .. 21: grid = min(tiles, SMs), the stage ring running on
// across a CTA's tiles; cuda-gemm3): GemmTmaPersistTwin is the one with the tile of TMA
// configuration `config`, or -1; pipe3: the three-piece 128 x 128 tile's pipelined one. One
// piece, the 128 x 128 tile's twin is 23 (cu-gemm16): the persistent 128 x 256 tile (22) where
// its grid fills the SMs and K >= 4096, else the persistent 128 x 128 one (18);
// TESSERA_CUDA_GEMM_WIDE=0: always 18. 24 / 25 (and three-piece 23 / 24) are the lab's "nochunk"
// timing diagnostics (not the canonical order). cu-gemm17: 26 (the 128 x 256 tile without the
// dummy wgmma ptxas adds after a conditional one; 23 takes it where 22 fitted, default
// TESSERA_CUDA_GEMM_WIDE=2) and 27 (18 without it; 23's other tile, default
// TESSERA_CUDA_GEMM_PQU=1), same bits; 28 / 29 diagnostics. cu-gemm18: 30 (26 with A fragment
// loads free of bank conflicts, same bits; 23 takes it where 26 fitted, default
// TESSERA_CUDA_GEMM_WIDE=3; 2 = 26).
inline constexpr int kTmaPersist0 = 18;
int GemmTmaPersistTwin(int config, int terms, bool pipe3);
// Split-K for prefill's small grids (cu-gemm15, lab/NOTES.md "Prefill GEMM, fifteenth session"):
// where TMA configuration `config` is an auto 128 x 64 tile (one piece 12, three pieces 7 / 13 /
// 19), M > 64 and its grid fills at most a quarter of the SMs (three pieces with K >= 8 chunks: at
// most half; k_gemm_tma.cu SplitChunksPerBlock has the measurements), the split-K configuration
// that runs it (12 / 13: chunk sums to the scratch after the planes, GemmTmaScratchBytes, then the
// combine in chunk order; same bits), else -1. TESSERA_CUDA_GEMM_PREFILL_SPLIT=0: always -1.
int GemmTmaPrefillSplit(const MatmulParams& p, int config, int terms);
// Grouped stream-K decode GEMM (cuda-x64, lab/NOTES.md "Aggregate decode at M = 64, third
// pass"): the GEMMs ps[0 .. n) over the same planes (same M <= 64 and K) in one launch of 128-row
// x 64-token split-K tiles whose (tile, chunk) units are shared evenly by `ctas` CTAs (0: one an
// SM), then one combine in chunk order: each output the bits of LaunchGemmWgmma. GemmTmaGroupFits:
// the members suit it (their tiles fill at most half the SMs, or at most all of them with K of at
// most 4 chunks; chunk sums within the split-K cap), or their 128 x 64 tiles fill more than half
// the SMs in one wave: then (ctas = 0) one launch of whole tiles, a tile a CTA, no chunk sums or
// combine (cu21-x64, k_gemm_tma.cu GroupPlain; TESSERA_CUDA_GEMM_GROUP_PLAIN=0: never); or, three
// pieces on a card of at least 4 TB/s, where their 128 x 64 tiles overflow one wave but 256 x 64
// tiles fill more than half of it: one launch of whole 256-row tiles (cu23-x64, GroupWide: the 8B
// gate/up; TESSERA_CUDA_GEMM_GROUP_WIDE=0: never); GemmTmaGroupScratchBytes: what `planes` must
// hold (the planes, then every member's chunk sums; the planes alone for whole tiles).
bool GemmTmaGroupFits(const MatmulParams* ps, int n, int terms);
uint64_t GemmTmaGroupScratchBytes(const MatmulParams* ps, int n, int terms);
cudaError_t LaunchGemmTmaGroup(const MatmulParams* ps, int n, int terms, const uint16_t* planes,
                               int ctas, cudaStream_t stream);
// Decode-batch groups (k_matmul_bf16.cu): LaunchGemmBf16Members runs its members as one grouped
// launch where GemmGroupFits: two or more GemmGroupMember MATMULs (M = 17 .. 64, bf16 weights, K
// a multiple of 32; whatever kernel each would run alone) with outputs pairwise disjoint and
// GemmTmaGroupFits; then they need not share a split otherwise (GemmSharesSplit), e.g. the 1B and
// 0.5B q/k/v. TESSERA_CUDA_GEMM_GROUP=0: never (before). GemmMembersScratchBytes: the bytes the
// planes buffer of LaunchGemmBf16Members must hold. SetGemmGroupMode: the lab's switch (0 off,
// 1 on, -1 the environment's), ctas as above.
bool GemmGroupMember(const MatmulParams& p, int terms);
bool GemmGroupFits(const MatmulParams* ps, int n, int terms);
uint64_t GemmMembersScratchBytes(const MatmulParams* ps, int n, int terms);
void SetGemmGroupMode(int mode, int ctas);
// TESSERA_CUDA_GEMM_TMA_SPLITK=0: the split-K configurations run unsplit and SmallMChoice
// (k_matmul_bf16.cu) does not pick them (the choice before them).
bool GemmTmaSplitKEnabled();

}  // namespace tessera::cuda

#endif  // TESSERA_BACKENDS_CUDA_GEMM_WGMMA_H_
