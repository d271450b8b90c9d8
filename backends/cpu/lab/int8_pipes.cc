// int8_pipes: which of the int8 GEMM's non-vpdpbusd instructions share the vpdpbusd pipes (dev
// box, Zen 5). Each loop issues 16 independent vpdpbusd zmm chains (the probe) plus `n`
// independent instructions of one kind per 16; if that kind runs on the same pipes, the vpdpbusd
// rate drops to 16 / (16 + n) of the probe's. Hand-written asm, CPU time, best of 5. x86 only;
// not part of the build. Dev box (2026-11-27, cpu-q8pp13 in docs/benchmarks.md): vmulps, the FMA
// and vpmaddwd share the pipes; vcvtdq2ps, vsubps, vpaddd, the in-lane shuffles, vpandd and
// vpsrlw do not; vshuff32x4 / vpermps partly; vpshufd's load form runs ~1 a cycle.
//
//   g++ -O2 -mavx512f -mavx512vnni -o /tmp/int8_pipes backends/cpu/lab/int8_pipes.cc
//   nice -n -19 /tmp/int8_pipes
#include <time.h>

#include <cstdint>
#include <cstdio>

namespace {

double Cpu() {
  timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return t.tv_sec + 1e-9 * t.tv_nsec;
}

#define DP16                                                              \
  "vpdpbusd %%zmm16,%%zmm17,%%zmm0\n vpdpbusd %%zmm16,%%zmm17,%%zmm1\n"   \
  "vpdpbusd %%zmm16,%%zmm17,%%zmm2\n vpdpbusd %%zmm16,%%zmm17,%%zmm3\n"   \
  "vpdpbusd %%zmm16,%%zmm17,%%zmm4\n vpdpbusd %%zmm16,%%zmm17,%%zmm5\n"   \
  "vpdpbusd %%zmm16,%%zmm17,%%zmm6\n vpdpbusd %%zmm16,%%zmm17,%%zmm7\n"   \
  "vpdpbusd %%zmm16,%%zmm17,%%zmm8\n vpdpbusd %%zmm16,%%zmm17,%%zmm9\n"   \
  "vpdpbusd %%zmm16,%%zmm17,%%zmm10\n vpdpbusd %%zmm16,%%zmm17,%%zmm11\n" \
  "vpdpbusd %%zmm16,%%zmm17,%%zmm12\n vpdpbusd %%zmm16,%%zmm17,%%zmm13\n" \
  "vpdpbusd %%zmm16,%%zmm17,%%zmm14\n vpdpbusd %%zmm16,%%zmm17,%%zmm15\n"
#define CLOB                                                                               \
  "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", \
      "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "xmm20", "xmm21", "xmm22", "xmm23"
#define X4(op) \
  op " %%zmm18,%%zmm20\n" op " %%zmm18,%%zmm21\n" op " %%zmm18,%%zmm22\n" op " %%zmm18,%%zmm23\n"
#define Y4(op)                                                       \
  op " %%zmm18,%%zmm19,%%zmm20\n" op " %%zmm18,%%zmm19,%%zmm21\n" op \
     " %%zmm18,%%zmm19,%%zmm22\n" op " %%zmm18,%%zmm19,%%zmm23\n"
#define LOOP(name, extra)                                              \
  __attribute__((noinline)) void name(int64_t n) {                     \
    for (int64_t i = 0; i < n; ++i) asm volatile(DP16 extra ::: CLOB); \
  }

LOOP(Dp, "")
LOOP(Cvt4, X4("vcvtdq2ps"))
LOOP(Cvt8, X4("vcvtdq2ps") X4("vcvtdq2ps"))
LOOP(Mul4, Y4("vmulps"))
LOOP(Sub4, Y4("vsubps"))
LOOP(Sub8, Y4("vsubps") Y4("vsubps"))
LOOP(Add4, Y4("vpaddd"))
LOOP(Add8, Y4("vpaddd") Y4("vpaddd"))
LOOP(Fma4, Y4("vfmadd231ps"))
LOOP(Shuf4, Y4("vshuff32x4 $0x44,"))
LOOP(Shufps4, Y4("vshufps $0x44,"))
LOOP(Perm4, Y4("vpermps"))
LOOP(Unpck4, Y4("vpunpckldq"))
LOOP(And4, Y4("vpandd"))
LOOP(Srl4, X4("vpsrlw $4,"))
LOOP(Pmaddwd4, Y4("vpmaddwd"))
LOOP(Pshufd4, X4("vpshufd $0x24,"))
LOOP(Pshufd8, X4("vpshufd $0x24,") X4("vpshufd $0x24,"))
LOOP(Pshufd16, X4("vpshufd $0x24,") X4("vpshufd $0x24,") X4("vpshufd $0x24,") X4("vpshufd $0x24,"))
LOOP(Pshufd24, X4("vpshufd $0x24,") X4("vpshufd $0x24,") X4("vpshufd $0x24,") X4("vpshufd $0x24,")
                   X4("vpshufd $0x24,") X4("vpshufd $0x24,"))
#define B4(r) "vpblendmd %%zmm18,%%zmm19," r "%{%%k1%}\n"
#define M4(imm)                                      \
  "vpshufd $" imm ",(%%rsp),%%zmm20\n vpshufd $" imm \
  ",64(%%rsp),%%zmm21\n"                             \
  "vpshufd $" imm ",128(%%rsp),%%zmm22\n vpshufd $" imm ",192(%%rsp),%%zmm23\n"
LOOP(PshufdMem8, M4("0x24") M4("0x64"))
LOOP(PshufdMem12, M4("0x24") M4("0x64") M4("0xa4"))
LOOP(Blendmd4, B4("%%zmm20") B4("%%zmm21") B4("%%zmm22") B4("%%zmm23"))
#define H4(r) "vcvtph2ps %%ymm18," r "\n"
LOOP(Cvtph4, H4("%%zmm20") H4("%%zmm21") H4("%%zmm22") H4("%%zmm23"))

void T(const char* name, void (*f)(int64_t)) {
  const int64_t n = 1 << 22;
  double best = 0;
  for (int r = 0; r < 5; ++r) {
    const double t0 = Cpu();
    f(n);
    const double rate = 16.0 * n / (Cpu() - t0) * 1e-9;
    if (rate > best) best = rate;
  }
  std::printf("%-28s vpdpbusd %5.2f /ns\n", name, best);
}

}  // namespace

int main() {
  asm volatile(
      "vpxord %%zmm16,%%zmm16,%%zmm16\n vpxord %%zmm17,%%zmm17,%%zmm17\n"
      "vpxord %%zmm18,%%zmm18,%%zmm18\n vpxord %%zmm19,%%zmm19,%%zmm19\n" ::
          : "xmm16", "xmm17", "xmm18", "xmm19");
  asm volatile("movl $0x5555, %%eax\n kmovw %%eax, %%k1\n" ::: "eax", "k1");
  T("16 vpdpbusd", Dp);
  T("+ 4 vcvtdq2ps", Cvt4);
  T("+ 8 vcvtdq2ps", Cvt8);
  T("+ 4 vmulps", Mul4);
  T("+ 4 vfmadd231ps", Fma4);
  T("+ 4 vsubps", Sub4);
  T("+ 8 vsubps", Sub8);
  T("+ 4 vpaddd", Add4);
  T("+ 8 vpaddd", Add8);
  T("+ 4 vshuff32x4", Shuf4);
  T("+ 4 vshufps", Shufps4);
  T("+ 4 vpermps", Perm4);
  T("+ 4 vpunpckldq", Unpck4);
  T("+ 4 vpandd", And4);
  T("+ 4 vpsrlw", Srl4);
  T("+ 4 vpmaddwd", Pmaddwd4);
  T("+ 4 vpshufd", Pshufd4);
  T("+ 8 vpshufd", Pshufd8);
  T("+ 16 vpshufd", Pshufd16);
  T("+ 24 vpshufd", Pshufd24);
  T("+ 4 vpblendmd {k1}", Blendmd4);
  T("+ 8 vpshufd from memory", PshufdMem8);
  T("+ 12 vpshufd from memory", PshufdMem12);
  T("+ 4 vcvtph2ps (ymm -> zmm)", Cvtph4);
  return 0;
}
