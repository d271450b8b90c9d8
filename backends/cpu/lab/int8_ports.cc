// int8_ports: Zen 5 (dev box) port facts for the int8 GEMM, CPU time, best of 3: 512-bit and
// 256-bit loads, broadcast loads, vpdpbusd zmm / ymm (register form, 16 chains), with a zmm or
// {1to16} memory operand, and vpdpbusd beside separate loads. Hand-written asm so the compiler
// cannot fold or drop anything. x86 only; not part of the build:
//
//   g++ -O2 -mavx512f -mavx512vnni -mavx512bw -mavx512vl -o /tmp/int8_ports
//     backends/cpu/lab/int8_ports.cc   (then: nice -n -19 /tmp/int8_ports)
#include <immintrin.h>
#include <time.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
static double Cpu() {
  timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return t.tv_sec + 1e-9 * t.tv_nsec;
}
alignas(64) static uint8_t buf[8192];

__attribute__((noinline)) void Loads512(int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    asm volatile(
        "vmovdqa64 0(%0),%%zmm16\n vmovdqa64 64(%0),%%zmm17\n vmovdqa64 128(%0),%%zmm18\n "
        "vmovdqa64 192(%0),%%zmm19\n"
        "vmovdqa64 256(%0),%%zmm20\n vmovdqa64 320(%0),%%zmm21\n vmovdqa64 384(%0),%%zmm22\n "
        "vmovdqa64 448(%0),%%zmm23\n"
        "vmovdqa64 512(%0),%%zmm24\n vmovdqa64 576(%0),%%zmm25\n vmovdqa64 640(%0),%%zmm26\n "
        "vmovdqa64 704(%0),%%zmm27\n"
        "vmovdqa64 768(%0),%%zmm28\n vmovdqa64 832(%0),%%zmm29\n vmovdqa64 896(%0),%%zmm30\n "
        "vmovdqa64 960(%0),%%zmm31\n" ::"r"(buf)
        : "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", "xmm21", "xmm22", "xmm23", "xmm24", "xmm25",
          "xmm26", "xmm27", "xmm28", "xmm29", "xmm30", "xmm31", "memory");
}
__attribute__((noinline)) void Loads256(int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    asm volatile(
        "vmovdqa64 0(%0),%%ymm16\n vmovdqa64 32(%0),%%ymm17\n vmovdqa64 64(%0),%%ymm18\n vmovdqa64 "
        "96(%0),%%ymm19\n"
        "vmovdqa64 128(%0),%%ymm20\n vmovdqa64 160(%0),%%ymm21\n vmovdqa64 192(%0),%%ymm22\n "
        "vmovdqa64 224(%0),%%ymm23\n"
        "vmovdqa64 256(%0),%%ymm24\n vmovdqa64 288(%0),%%ymm25\n vmovdqa64 320(%0),%%ymm26\n "
        "vmovdqa64 352(%0),%%ymm27\n"
        "vmovdqa64 384(%0),%%ymm28\n vmovdqa64 416(%0),%%ymm29\n vmovdqa64 448(%0),%%ymm30\n "
        "vmovdqa64 480(%0),%%ymm31\n" ::"r"(buf)
        : "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", "xmm21", "xmm22", "xmm23", "xmm24", "xmm25",
          "xmm26", "xmm27", "xmm28", "xmm29", "xmm30", "xmm31", "memory");
}
__attribute__((noinline)) void Bcast(int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    asm volatile(
        "vpbroadcastd 0(%0),%%zmm16\n vpbroadcastd 4(%0),%%zmm17\n vpbroadcastd 8(%0),%%zmm18\n "
        "vpbroadcastd 12(%0),%%zmm19\n"
        "vpbroadcastd 16(%0),%%zmm20\n vpbroadcastd 20(%0),%%zmm21\n vpbroadcastd 24(%0),%%zmm22\n "
        "vpbroadcastd 28(%0),%%zmm23\n"
        "vpbroadcastd 32(%0),%%zmm24\n vpbroadcastd 36(%0),%%zmm25\n vpbroadcastd 40(%0),%%zmm26\n "
        "vpbroadcastd 44(%0),%%zmm27\n"
        "vpbroadcastd 48(%0),%%zmm28\n vpbroadcastd 52(%0),%%zmm29\n vpbroadcastd 56(%0),%%zmm30\n "
        "vpbroadcastd 60(%0),%%zmm31\n" ::"r"(buf)
        : "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", "xmm21", "xmm22", "xmm23", "xmm24", "xmm25",
          "xmm26", "xmm27", "xmm28", "xmm29", "xmm30", "xmm31", "memory");
}
// 16 chains vpdpbusd zmm with memory operand (different lines)
__attribute__((noinline)) void DpMem(int64_t n) {
  asm volatile("vpxord %%zmm0,%%zmm0,%%zmm0" ::: "xmm0");
  for (int64_t i = 0; i < n; ++i)
    asm volatile(
        "vpdpbusd 0(%0),%%zmm0,%%zmm16\n vpdpbusd 64(%0),%%zmm0,%%zmm17\n vpdpbusd "
        "128(%0),%%zmm0,%%zmm18\n vpdpbusd 192(%0),%%zmm0,%%zmm19\n"
        "vpdpbusd 256(%0),%%zmm0,%%zmm20\n vpdpbusd 320(%0),%%zmm0,%%zmm21\n vpdpbusd "
        "384(%0),%%zmm0,%%zmm22\n vpdpbusd 448(%0),%%zmm0,%%zmm23\n"
        "vpdpbusd 512(%0),%%zmm0,%%zmm24\n vpdpbusd 576(%0),%%zmm0,%%zmm25\n vpdpbusd "
        "640(%0),%%zmm0,%%zmm26\n vpdpbusd 704(%0),%%zmm0,%%zmm27\n"
        "vpdpbusd 768(%0),%%zmm0,%%zmm28\n vpdpbusd 832(%0),%%zmm0,%%zmm29\n vpdpbusd "
        "896(%0),%%zmm0,%%zmm30\n vpdpbusd 960(%0),%%zmm0,%%zmm31\n" ::"r"(buf)
        : "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", "xmm21", "xmm22", "xmm23", "xmm24", "xmm25",
          "xmm26", "xmm27", "xmm28", "xmm29", "xmm30", "xmm31", "memory");
}
// same, broadcast memory operand {1to16}
__attribute__((noinline)) void DpBcast(int64_t n) {
  asm volatile("vpxord %%zmm0,%%zmm0,%%zmm0" ::: "xmm0");
  for (int64_t i = 0; i < n; ++i)
    asm volatile(
        "vpdpbusd 0(%0)%{1to16%},%%zmm0,%%zmm16\n vpdpbusd 4(%0)%{1to16%},%%zmm0,%%zmm17\n "
        "vpdpbusd 8(%0)%{1to16%},%%zmm0,%%zmm18\n vpdpbusd 12(%0)%{1to16%},%%zmm0,%%zmm19\n"
        "vpdpbusd 16(%0)%{1to16%},%%zmm0,%%zmm20\n vpdpbusd 20(%0)%{1to16%},%%zmm0,%%zmm21\n "
        "vpdpbusd 24(%0)%{1to16%},%%zmm0,%%zmm22\n vpdpbusd 28(%0)%{1to16%},%%zmm0,%%zmm23\n"
        "vpdpbusd 32(%0)%{1to16%},%%zmm0,%%zmm24\n vpdpbusd 36(%0)%{1to16%},%%zmm0,%%zmm25\n "
        "vpdpbusd 40(%0)%{1to16%},%%zmm0,%%zmm26\n vpdpbusd 44(%0)%{1to16%},%%zmm0,%%zmm27\n"
        "vpdpbusd 48(%0)%{1to16%},%%zmm0,%%zmm28\n vpdpbusd 52(%0)%{1to16%},%%zmm0,%%zmm29\n "
        "vpdpbusd 56(%0)%{1to16%},%%zmm0,%%zmm30\n vpdpbusd 60(%0)%{1to16%},%%zmm0,%%zmm31\n" ::"r"(
            buf)
        : "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", "xmm21", "xmm22", "xmm23", "xmm24", "xmm25",
          "xmm26", "xmm27", "xmm28", "xmm29", "xmm30", "xmm31", "memory");
}
// ymm vpdpbusd register form, 16 chains
__attribute__((noinline)) void DpYmm(int64_t n) {
  asm volatile("vpxord %%zmm0,%%zmm0,%%zmm0" ::: "xmm0");
  for (int64_t i = 0; i < n; ++i)
    asm volatile(
        "vpdpbusd %%ymm0,%%ymm0,%%ymm16\n vpdpbusd %%ymm0,%%ymm0,%%ymm17\n vpdpbusd "
        "%%ymm0,%%ymm0,%%ymm18\n vpdpbusd %%ymm0,%%ymm0,%%ymm19\n"
        "vpdpbusd %%ymm0,%%ymm0,%%ymm20\n vpdpbusd %%ymm0,%%ymm0,%%ymm21\n vpdpbusd "
        "%%ymm0,%%ymm0,%%ymm22\n vpdpbusd %%ymm0,%%ymm0,%%ymm23\n"
        "vpdpbusd %%ymm0,%%ymm0,%%ymm24\n vpdpbusd %%ymm0,%%ymm0,%%ymm25\n vpdpbusd "
        "%%ymm0,%%ymm0,%%ymm26\n vpdpbusd %%ymm0,%%ymm0,%%ymm27\n"
        "vpdpbusd %%ymm0,%%ymm0,%%ymm28\n vpdpbusd %%ymm0,%%ymm0,%%ymm29\n vpdpbusd "
        "%%ymm0,%%ymm0,%%ymm30\n vpdpbusd %%ymm0,%%ymm0,%%ymm31\n" ::
            : "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", "xmm21", "xmm22", "xmm23", "xmm24",
              "xmm25", "xmm26", "xmm27", "xmm28", "xmm29", "xmm30", "xmm31");
}
// zmm register form, 16 chains
__attribute__((noinline)) void DpZmm(int64_t n) {
  asm volatile("vpxord %%zmm0,%%zmm0,%%zmm0" ::: "xmm0");
  for (int64_t i = 0; i < n; ++i)
    asm volatile(
        "vpdpbusd %%zmm0,%%zmm0,%%zmm16\n vpdpbusd %%zmm0,%%zmm0,%%zmm17\n vpdpbusd "
        "%%zmm0,%%zmm0,%%zmm18\n vpdpbusd %%zmm0,%%zmm0,%%zmm19\n"
        "vpdpbusd %%zmm0,%%zmm0,%%zmm20\n vpdpbusd %%zmm0,%%zmm0,%%zmm21\n vpdpbusd "
        "%%zmm0,%%zmm0,%%zmm22\n vpdpbusd %%zmm0,%%zmm0,%%zmm23\n"
        "vpdpbusd %%zmm0,%%zmm0,%%zmm24\n vpdpbusd %%zmm0,%%zmm0,%%zmm25\n vpdpbusd "
        "%%zmm0,%%zmm0,%%zmm26\n vpdpbusd %%zmm0,%%zmm0,%%zmm27\n"
        "vpdpbusd %%zmm0,%%zmm0,%%zmm28\n vpdpbusd %%zmm0,%%zmm0,%%zmm29\n vpdpbusd "
        "%%zmm0,%%zmm0,%%zmm30\n vpdpbusd %%zmm0,%%zmm0,%%zmm31\n" ::
            : "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", "xmm21", "xmm22", "xmm23", "xmm24",
              "xmm25", "xmm26", "xmm27", "xmm28", "xmm29", "xmm30", "xmm31");
}
// zmm register dpbusd interleaved with separate 512-bit loads into other regs (8 dp + 8 loads)
__attribute__((noinline)) void DpZmmPlusLoads(int64_t n) {
  asm volatile("vpxord %%zmm0,%%zmm0,%%zmm0" ::: "xmm0");
  for (int64_t i = 0; i < n; ++i)
    asm volatile(
        "vpdpbusd %%zmm0,%%zmm0,%%zmm16\n vmovdqa64 0(%0),%%zmm24\n vpdpbusd "
        "%%zmm0,%%zmm0,%%zmm17\n vmovdqa64 64(%0),%%zmm25\n"
        "vpdpbusd %%zmm0,%%zmm0,%%zmm18\n vmovdqa64 128(%0),%%zmm26\n vpdpbusd "
        "%%zmm0,%%zmm0,%%zmm19\n vmovdqa64 192(%0),%%zmm27\n"
        "vpdpbusd %%zmm0,%%zmm0,%%zmm20\n vmovdqa64 256(%0),%%zmm28\n vpdpbusd "
        "%%zmm0,%%zmm0,%%zmm21\n vmovdqa64 320(%0),%%zmm29\n"
        "vpdpbusd %%zmm0,%%zmm0,%%zmm22\n vmovdqa64 384(%0),%%zmm30\n vpdpbusd "
        "%%zmm0,%%zmm0,%%zmm23\n vmovdqa64 448(%0),%%zmm31\n" ::"r"(buf)
        : "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", "xmm21", "xmm22", "xmm23", "xmm24", "xmm25",
          "xmm26", "xmm27", "xmm28", "xmm29", "xmm30", "xmm31", "memory");
}
// 8 dp zmm + 4 loads
__attribute__((noinline)) void DpZmmHalfLoads(int64_t n) {
  asm volatile("vpxord %%zmm0,%%zmm0,%%zmm0" ::: "xmm0");
  for (int64_t i = 0; i < n; ++i)
    asm volatile(
        "vpdpbusd %%zmm0,%%zmm0,%%zmm16\n vmovdqa64 0(%0),%%zmm24\n vpdpbusd "
        "%%zmm0,%%zmm0,%%zmm17\n vpdpbusd %%zmm0,%%zmm0,%%zmm18\n vmovdqa64 64(%0),%%zmm25\n"
        "vpdpbusd %%zmm0,%%zmm0,%%zmm19\n vpdpbusd %%zmm0,%%zmm0,%%zmm20\n vmovdqa64 "
        "128(%0),%%zmm26\n vpdpbusd %%zmm0,%%zmm0,%%zmm21\n"
        "vpdpbusd %%zmm0,%%zmm0,%%zmm22\n vmovdqa64 192(%0),%%zmm27\n vpdpbusd "
        "%%zmm0,%%zmm0,%%zmm23\n" ::"r"(buf)
        : "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", "xmm21", "xmm22", "xmm23", "xmm24", "xmm25",
          "xmm26", "xmm27", "xmm28", "xmm29", "xmm30", "xmm31", "memory");
}
// 8 dp zmm + 8 broadcast loads
__attribute__((noinline)) void DpZmmPlusBcast(int64_t n) {
  asm volatile("vpxord %%zmm0,%%zmm0,%%zmm0" ::: "xmm0");
  for (int64_t i = 0; i < n; ++i)
    asm volatile(
        "vpdpbusd %%zmm0,%%zmm0,%%zmm16\n vpbroadcastd 0(%0),%%zmm24\n vpdpbusd "
        "%%zmm0,%%zmm0,%%zmm17\n vpbroadcastd 4(%0),%%zmm25\n"
        "vpdpbusd %%zmm0,%%zmm0,%%zmm18\n vpbroadcastd 8(%0),%%zmm26\n vpdpbusd "
        "%%zmm0,%%zmm0,%%zmm19\n vpbroadcastd 12(%0),%%zmm27\n"
        "vpdpbusd %%zmm0,%%zmm0,%%zmm20\n vpbroadcastd 16(%0),%%zmm28\n vpdpbusd "
        "%%zmm0,%%zmm0,%%zmm21\n vpbroadcastd 20(%0),%%zmm29\n"
        "vpdpbusd %%zmm0,%%zmm0,%%zmm22\n vpbroadcastd 24(%0),%%zmm30\n vpdpbusd "
        "%%zmm0,%%zmm0,%%zmm23\n vpbroadcastd 28(%0),%%zmm31\n" ::"r"(buf)
        : "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", "xmm21", "xmm22", "xmm23", "xmm24", "xmm25",
          "xmm26", "xmm27", "xmm28", "xmm29", "xmm30", "xmm31", "memory");
}
template <class F>
void T(const char* name, F f, int per) {
  double best = 0;
  for (int r = 0; r < 3; ++r) {
    int64_t n = 1 << 22;
    double t0 = Cpu();
    f(n);
    double t = Cpu() - t0;
    double rate = double(n) * per / t * 1e-9;
    if (rate > best) best = rate;
  }
  std::printf("%-34s %6.2f /ns\n", name, best);
}
int main() {
  for (int i = 0; i < 8192; ++i) buf[i] = i * 7;
  T("zmm loads (16)", Loads512, 16);
  T("ymm loads (16)", Loads256, 16);
  T("bcast loads zmm (16)", Bcast, 16);
  T("vpdpbusd zmm reg (16 chains)", DpZmm, 16);
  T("vpdpbusd ymm reg (16 chains)", DpYmm, 16);
  T("vpdpbusd zmm mem (16 chains)", DpMem, 16);
  T("vpdpbusd zmm {1to16} (16 chains)", DpBcast, 16);
  T("vpdpbusd zmm + zmm load 1:1 (dp/ns)", DpZmmPlusLoads, 8);
  T("vpdpbusd zmm + load 2:1 (dp/ns)", DpZmmHalfLoads, 8);
  T("vpdpbusd zmm + bcast 1:1 (dp/ns)", DpZmmPlusBcast, 8);
}
