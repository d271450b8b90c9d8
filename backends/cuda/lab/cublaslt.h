// cuBLASLt as a yardstick for the prefill GEMM lab, opened with dlopen at run time: no cuBLAS
// headers or link. The handful of prototypes and enum values below are cuBLASLt's public C API
// (cublasLt.h, CUDA 12); only what a bf16 x bf16 -> f32 matmul needs.
//
// Library: $TESSERA_CUBLASLT (a path), else libcublasLt.so.12 / libcublasLt.so from the loader's
// search path. Absent: Available() is false and the lab skips the comparison.
#pragma once

#include <cuda_runtime_api.h>
#include <dlfcn.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>

namespace tessera::cuda::lab {

class CublasLt {
  // cuBLASLt's cublasLtMatmulAlgo_t and cublasLtMatmulHeuristicResult_t.
  struct Algo {
    uint64_t data[8];
  };
  struct HeuristicResult {
    Algo algo;
    size_t workspace_size;
    int state;
    float waves;
    int reserved[4];
  };

 public:
  CublasLt() {
    const char* env = std::getenv("TESSERA_CUBLASLT");
    for (const char* name : {env, "libcublasLt.so.12", "libcublasLt.so"}) {
      if (name == nullptr || *name == '\0') continue;
      lib_ = dlopen(name, RTLD_NOW | RTLD_LOCAL);
      if (lib_ != nullptr) break;
    }
    if (lib_ == nullptr) {
      std::printf("cublaslt unavailable (%s)\n", dlerror());
      return;
    }
    ok_ = Sym(create_, "cublasLtCreate") && Sym(destroy_, "cublasLtDestroy") &&
          Sym(desc_create_, "cublasLtMatmulDescCreate") &&
          Sym(desc_destroy_, "cublasLtMatmulDescDestroy") &&
          Sym(desc_set_, "cublasLtMatmulDescSetAttribute") &&
          Sym(layout_create_, "cublasLtMatrixLayoutCreate") &&
          Sym(layout_destroy_, "cublasLtMatrixLayoutDestroy") &&
          Sym(pref_create_, "cublasLtMatmulPreferenceCreate") &&
          Sym(pref_destroy_, "cublasLtMatmulPreferenceDestroy") &&
          Sym(pref_set_, "cublasLtMatmulPreferenceSetAttribute") &&
          Sym(heuristic_, "cublasLtMatmulAlgoGetHeuristic") && Sym(matmul_, "cublasLtMatmul") &&
          create_(&handle_) == 0;
    if (ok_ && cudaMalloc(&workspace_, kWorkspace) != cudaSuccess) ok_ = false;
  }
  ~CublasLt() {
    if (workspace_ != nullptr) cudaFree(workspace_);
    if (handle_ != nullptr) destroy_(handle_);
    // The library stays loaded: it may have registered exit handlers.
  }
  CublasLt(const CublasLt&) = delete;
  CublasLt& operator=(const CublasLt&) = delete;

  bool Available() const { return ok_; }

  // A plan for out[M, N] (f32, row-major) = x[M, K] (bf16) . w[N, K]^T (bf16), f32 accumulation:
  // column-major D[N, M] = op_T(W as K x N) * X (K x M), cuBLASLt's "TN".
  struct Plan {
    void* desc = nullptr;
    void* la = nullptr;
    void* lb = nullptr;
    void* lc = nullptr;
    Algo algo{};
    bool ok = false;
  };
  Plan Make(int64_t M, int64_t N, int64_t K) {
    Plan p;
    if (!ok_) return p;
    const int32_t op_t = 1, op_n = 0;
    if (desc_create_(&p.desc, kCompute32F, kR32F) != 0 ||
        desc_set_(p.desc, kTransA, &op_t, sizeof(op_t)) != 0 ||
        desc_set_(p.desc, kTransB, &op_n, sizeof(op_n)) != 0 ||
        layout_create_(&p.la, kR16BF, K, N, K) != 0 ||
        layout_create_(&p.lb, kR16BF, K, M, K) != 0 || layout_create_(&p.lc, kR32F, N, M, N) != 0)
      return p;
    void* pref = nullptr;
    const uint64_t ws = kWorkspace;
    if (pref_create_(&pref) != 0) return p;
    HeuristicResult r[1] = {};
    int n = 0;
    const bool found = pref_set_(pref, kPrefMaxWorkspace, &ws, sizeof(ws)) == 0 &&
                       heuristic_(handle_, p.desc, p.la, p.lb, p.lc, p.lc, pref, 1, r, &n) == 0 &&
                       n > 0 && r[0].state == 0;
    pref_destroy_(pref);
    if (!found) return p;
    p.algo = r[0].algo;
    p.ok = true;
    return p;
  }
  void Free(Plan& p) {
    if (p.la != nullptr) layout_destroy_(p.la);
    if (p.lb != nullptr) layout_destroy_(p.lb);
    if (p.lc != nullptr) layout_destroy_(p.lc);
    if (p.desc != nullptr) desc_destroy_(p.desc);
    p = Plan{};
  }
  // w: [N, K] bf16, x: [M, K] bf16, out: [M, N] f32.
  int Run(const Plan& p, const void* w, const void* x, float* out, cudaStream_t stream) {
    const float one = 1.0f, zero = 0.0f;
    return matmul_(handle_, p.desc, &one, w, p.la, x, p.lb, &zero, out, p.lc, out, p.lc, &p.algo,
                   workspace_, kWorkspace, stream);
  }

 private:
  static constexpr int kCompute32F = 68;          // CUBLAS_COMPUTE_32F
  static constexpr int kR32F = 0, kR16BF = 14;    // CUDA_R_32F, CUDA_R_16BF
  static constexpr int kTransA = 3, kTransB = 4;  // CUBLASLT_MATMUL_DESC_TRANSA / _TRANSB
  static constexpr int kPrefMaxWorkspace = 1;     // CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES
  static constexpr size_t kWorkspace = size_t{32} << 20;

  template <class F>
  bool Sym(F& f, const char* name) {
    f = reinterpret_cast<F>(dlsym(lib_, name));
    if (f == nullptr) std::printf("cublaslt missing symbol %s\n", name);
    return f != nullptr;
  }

  void* lib_ = nullptr;
  void* handle_ = nullptr;
  void* workspace_ = nullptr;
  bool ok_ = false;
  int (*create_)(void**) = nullptr;
  int (*destroy_)(void*) = nullptr;
  int (*desc_create_)(void**, int, int) = nullptr;
  int (*desc_destroy_)(void*) = nullptr;
  int (*desc_set_)(void*, int, const void*, size_t) = nullptr;
  int (*layout_create_)(void**, int, uint64_t, uint64_t, int64_t) = nullptr;
  int (*layout_destroy_)(void*) = nullptr;
  int (*pref_create_)(void**) = nullptr;
  int (*pref_destroy_)(void*) = nullptr;
  int (*pref_set_)(void*, int, const void*, size_t) = nullptr;
  int (*heuristic_)(void*, void*, void*, void*, void*, void*, void*, int, HeuristicResult*,
                    int*) = nullptr;
  int (*matmul_)(void*, void*, const void*, const void*, void*, const void*, void*, const void*,
                 const void*, void*, void*, void*, const Algo*, void*, size_t,
                 cudaStream_t) = nullptr;
};

}  // namespace tessera::cuda::lab
