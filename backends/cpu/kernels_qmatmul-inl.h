// The int8-dot tile kernels of kernels_qmatmul.cc, compiled twice from there: with VBMI byte
// permutes (TSR_QK_VBMI 1, namespace vbmi) and without (namespace base: AVX-512 VNNI CPUs
// without VBMI, e.g. Cascade Lake). TSR_QK is the function attribute of the variant. Both
// compute the canonical order of kernels_qmatmul.cc; only the weight unpacking differs.
// No include guard: included once per variant, inside the variant's namespace.

#if TSR_QK_VBMI
// `have` = bytes of the step that exist (read only with kTail: a full step has them all).
template <bool kTail>
TSR_QK inline StepW UnpackQ4(const Perms& pm, const uint8_t* b, int64_t have) {
  const __m512i l0 = LoadBytes<kTail>(b, have), l1 = LoadBytes<kTail>(b + 8, have - 8);
  const __m512i packed = _mm512_permutex2var_epi8(l0, pm.q4_bytes, l1);
  const __m512i mask = _mm512_set1_epi8(0x0f);
  StepW w;
  w.lo = _mm512_and_si512(packed, mask);
  w.hi = _mm512_and_si512(_mm512_srli_epi16(packed, 4), mask);
  w.dh = _mm512_castsi512_si256(_mm512_permutexvar_epi16(pm.q4_scales, l0));
  return w;
}

template <bool kTail>
TSR_QK inline StepW UnpackQ8(const Perms& pm, const uint8_t* b, int64_t have) {
  const __m512i l0 = LoadBytes<kTail>(b, have), l0b = LoadBytes<kTail>(b + 4, have - 4);
  const __m512i l1 = LoadBytes<kTail>(b + 64, have - 64);
  const __m512i l2 = LoadBytes<kTail>(b + 72, have - 72);
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
  StepW w;
  w.lo = _mm512_xor_si512(_mm512_permutex2var_epi8(l0, pm.q8_lo, l1), flip);
  w.hi = _mm512_xor_si512(_mm512_permutex2var_epi8(l0b, pm.q8_hi, l2), flip);
  w.dh = _mm512_castsi512_si256(_mm512_permutex2var_epi16(l0, pm.q8_scales, l1));
  return w;
}

#endif  // TSR_QK_VBMI

template <bool kTail>
TSR_QK inline StepW UnpackQ4Ins(const Perms& pm, const uint8_t* b, int64_t have) {
  constexpr int bb = TSR_BLOCK_Q4_BYTES;
  const __m512i packed =
      Lanes4(LoadHalf<kTail>(b + 2, have > 0), LoadHalf<kTail>(b + bb + 2, have > bb),
             LoadHalf<kTail>(b + 2 * bb + 2, have > 2 * bb),
             LoadHalf<kTail>(b + 3 * bb + 2, have > 3 * bb));
  const __m512i mask = _mm512_set1_epi8(0x0f);
  StepW w;
  w.lo = _mm512_and_si512(packed, mask);
  w.hi = _mm512_and_si512(_mm512_srli_epi16(packed, 4), mask);
  const __m512i l0 = LoadBytes<kTail>(b, have);
  w.dh = _mm512_castsi512_si256(_mm512_permutexvar_epi16(pm.q4_scales, l0));
  return w;
}

template <bool kTail>
TSR_QK inline StepW UnpackQ8Ins(const Perms& pm, const uint8_t* b, int64_t have) {
  constexpr int bb = TSR_BLOCK_Q8_BYTES;
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
  StepW w;
  w.lo = _mm512_xor_si512(
      Lanes4(LoadHalf<kTail>(b + 2, have > 0), LoadHalf<kTail>(b + bb + 2, have > bb),
             LoadHalf<kTail>(b + 2 * bb + 2, have > 2 * bb),
             LoadHalf<kTail>(b + 3 * bb + 2, have > 3 * bb)),
      flip);
  w.hi = _mm512_xor_si512(
      Lanes4(LoadHalf<kTail>(b + 18, have > 0), LoadHalf<kTail>(b + bb + 18, have > bb),
             LoadHalf<kTail>(b + 2 * bb + 18, have > 2 * bb),
             LoadHalf<kTail>(b + 3 * bb + 18, have > 3 * bb)),
      flip);
  const __m512i l0 = LoadBytes<kTail>(b, have), l1 = LoadBytes<kTail>(b + 64, have - 64);
  w.dh = _mm512_castsi512_si256(_mm512_permutex2var_epi16(l0, pm.q8_scales, l1));
  return w;
}

template <tsr_dtype WT, bool kTail>
TSR_QK inline StepW Unpack(const Perms& pm, const uint8_t* b, int64_t have) {
  if constexpr (WT == TSR_DTYPE_Q8_B32) {
#if TSR_QK_VBMI
    return UnpackQ8<kTail>(pm, b, have);
#else
    return UnpackQ8Ins<kTail>(pm, b, have);
#endif
  } else {
#if TSR_QK_VBMI
    return UnpackQ4<kTail>(pm, b, have);
#else
    return UnpackQ4Ins<kTail>(pm, b, have);
#endif
  }
}

// One 128-value step of one weight row against the activation step at xq: the 16 lanes'
// 8-product sums (isum, from 0) and the step's block scales (dh, binary16, a block's four lanes).
template <tsr_dtype WT, bool kTail>
TSR_QK inline void RowStep(const Perms& pm, const uint8_t* w, int64_t have, const int8_t* xq,
                           __m512i& isum, __m256i& dh) {
  const StepW wv = Unpack<WT, kTail>(pm, w, have);
  const __m512i xlo = _mm512_loadu_si512(xq), xhi = _mm512_loadu_si512(xq + 64);
  isum = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), wv.lo, xlo), wv.hi, xhi);
  dh = wv.dh;
}

// A superstep's float update: the four steps' sums folded per block (+ the activations'
// correction), times dw x dx, into acc.
TSR_QK inline __m512 SuperUpdate(const __m512i (&is)[kSuperSteps], const __m256i (&dh)[kSuperSteps],
                                 __m512i cx, __m512 dxv, __m512 acc) {
  const __m512i t = _mm512_add_epi32(TransposeSum(is), cx);
  return _mm512_fmadd_ps(_mm512_cvtepi32_ps(t), _mm512_mul_ps(BlendScales(dh), dxv), acc);
}

// Operand-packed weights (option repack, packed_weights.h): each full superstep of a row is
// its 8 vpdpbusd operands (operand k, lane l: values 4 k .. 4 k + 3 of block B(l), unsigned;
// Q8 512 bytes, Q4 4 x 64 bytes with operand k in the low nibbles and k + 4 in the high ones)
// and then the 16 block scales in lane order (binary16): the unpacking is loads, and for Q4 a
// mask and a shift.
template <tsr_dtype WT>
TSR_QK inline void LoadOperands(const uint8_t* s, __m512i (&o)[8], __m512& dw) {
  if constexpr (WT == TSR_DTYPE_Q8_B32) {
    for (int k = 0; k < 8; ++k) o[k] = _mm512_loadu_si512(s + 64 * k);
    dw = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + 512)));
  } else {
    const __m512i mask = _mm512_set1_epi8(0x0f);
    for (int k = 0; k < 4; ++k) {
      const __m512i v = _mm512_loadu_si512(s + 64 * k);
      o[k] = _mm512_and_si512(v, mask);
      o[k + 4] = _mm512_and_si512(_mm512_srli_epi16(v, 4), mask);
    }
    dw = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + 256)));
  }
}

// An operand-packed row's last partial superstep of nb < 16 blocks at s (PackInt8Row: per
// operand the dwords of its `lanes`, kPartialLanes.mask[nb], in lane order, then their nb
// scales), expanded into those lanes; the other lanes are zero, as are their activations and
// scales, so they add fma(0, 0, acc) = acc, as the row-major partial superstep does. Reads only
// the superstep's nb x block bytes.
template <tsr_dtype WT>
TSR_QK __attribute__((always_inline)) inline void PartialOperands(const uint8_t* s, int64_t nb,
                                                                  __mmask16 lanes, __m512i (&o)[8],
                                                                  __m512& dw) {
  const uint8_t* scales;
  if constexpr (WT == TSR_DTYPE_Q8_B32) {
    for (int k = 0; k < 8; ++k) o[k] = _mm512_maskz_expandloadu_epi32(lanes, s + 4 * nb * k);
    scales = s + 32 * nb;
  } else {
    const __m512i mask = _mm512_set1_epi8(0x0f);
    for (int k = 0; k < 4; ++k) {
      const __m512i v = _mm512_maskz_expandloadu_epi32(lanes, s + 4 * nb * k);
      o[k] = _mm512_and_si512(v, mask);
      o[k + 4] = _mm512_and_si512(_mm512_srli_epi16(v, 4), mask);
    }
    scales = s + 16 * nb;
  }
  const __mmask16 have = static_cast<__mmask16>((1u << nb) - 1);
  dw = _mm512_maskz_expand_ps(lanes, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(have, scales)));
}

// PartialOperands for the GEMM's unpack (UnpackGroup), out of line: inline there it changed how
// GCC inlined the main unit's GEMV tiles (objdump), which never take it.
template <tsr_dtype WT>
TSR_QK __attribute__((noinline)) void PartialOperandsOf(const uint8_t* s, int64_t nb, __m512i* o,
                                                        __m512& dw) {
  __m512i v[8];
  PartialOperands<WT>(s, nb, kPartialLanes.mask[nb], v, dw);
  for (int k = 0; k < 8; ++k) o[k] = v[k];
}

// The operands of superstep S of the row-major row w, unpacked from block bytes: steps past
// `steps` are zero.
template <tsr_dtype WT>
TSR_QK inline void BlockOperands(const Perms& pm, const uint8_t* w, int64_t S, int64_t row_bytes,
                                 int64_t full, int64_t steps, __m512i* o, __m512& dw) {
  constexpr int64_t step_bytes =
      kStepBlocks * (WT == TSR_DTYPE_Q8_B32 ? TSR_BLOCK_Q8_BYTES : TSR_BLOCK_Q4_BYTES);
  __m512i lo[kSuperSteps], hi[kSuperSteps];
  __m256i dh[kSuperSteps];
  for (int s = 0; s < kSuperSteps; ++s) {
    const int64_t g = S * kSuperSteps + s;
    StepW st{_mm512_setzero_si512(), _mm512_setzero_si512(), _mm256_setzero_si256()};
    if (g < full)
      st = Unpack<WT, false>(pm, w + g * step_bytes, row_bytes - g * step_bytes);
    else if (g < steps)
      st = Unpack<WT, true>(pm, w + g * step_bytes, row_bytes - g * step_bytes);
    lo[s] = st.lo;
    hi[s] = st.hi;
    dh[s] = st.dh;
  }
  Transpose4(lo, o);
  Transpose4(hi, o + 4);
  dw = BlendScales(dh);
}

// One row's superstep update from its operands and the activation operands xk (blocked).
TSR_QK __attribute__((always_inline)) inline __m512 OperandUpdate(const __m512i (&o)[8], __m512 dw,
                                                                  const __m512i (&xk)[8],
                                                                  __m512i cx, __m512 dxv,
                                                                  __m512 acc) {
  __m512i t = cx;
  for (int k = 0; k < 8; ++k) t = _mm512_dpbusd_epi32(t, o[k], xk[k]);
  return _mm512_fmadd_ps(_mm512_cvtepi32_ps(t), _mm512_mul_ps(dw, dxv), acc);
}

template <int MR, int NR, bool kGemv = false>
TSR_QK inline void FinishTile(const MatmulProblem& p, int64_t m0, int64_t n0,
                              const __m512 (&acc)[MR][NR]);

// Bytes of the next NR-row tile that the GEMV tile at rows [n0, n0 + NR) prefetches: 0 past
// the last rows or for tiles over TESSERA_CPU_GEMV_PREFETCH_MAX (PrefetchPolicy).
template <int NR>
inline int64_t NextTileBytes(const MatmulProblem& p, int64_t n0) {
  const int64_t next_rows = std::min<int64_t>(NR, p.N - n0 - NR);
  return next_rows > 0 && NR * p.w_row_bytes <= PrefetchPolicy().gemv_max_tile_bytes
             ? next_rows * p.w_row_bytes
             : 0;
}

// GEMV over operand-packed weights (activations quantized blocked): per row and superstep 8
// loads (Q4: 4 + mask / shift), 8 vpdpbusd and one float update; no permutes, no fold. The
// block sums start at the activations' correction (the same exact int32 as the fold + cx).
// K % 512 == 0 only: rows with a partial last superstep store it compacted and run
// TilePartialOperands (QMatmulColumns sends them there), so the else branch below is never
// taken; it is left as it was so that this tile, which the K % 512 == 0 shapes (Llama) run,
// keeps its instructions (any edit here changes what GCC inlines into it).
template <int NR, tsr_dtype WT>
TSR_QK __attribute__((always_inline)) inline void TileOperands(const MatmulProblem& p,
                                                               const Perms& pm, int64_t m,
                                                               int64_t n0) {
  const QuantizedActs& a = *p.qx;
  constexpr int64_t bb = WT == TSR_DTYPE_Q8_B32 ? TSR_BLOCK_Q8_BYTES : TSR_BLOCK_Q4_BYTES;
  constexpr int64_t super_bytes = kSuperBlocks * bb;
  const ActRow x = RowOf(a, m);
  const uint8_t* w0 = p.w + n0 * p.w_row_bytes;
  __m512 acc[1][NR];
  for (int j = 0; j < NR; ++j) acc[0][j] = _mm512_setzero_ps();
  const int64_t row_bytes = p.K / TSR_QBLOCK * bb;
  const int64_t pf_bytes = NextTileBytes<NR>(p, n0);
  TilePrefetch prefetch(p.w + (n0 + NR) * p.w_row_bytes, pf_bytes, a.supers * NR);
  const int64_t full_supers = p.K / kSuper;
  for (int64_t S = 0; S < a.supers; ++S) {
    __m512i xk[8];
    for (int k = 0; k < 8; ++k) xk[k] = _mm512_loadu_si512(x.q + kSuper * S + 64 * k);
    const __m512i cx = _mm512_loadu_si512(x.corr + kLanes * S);
    const __m512 dxv = _mm512_loadu_ps(x.dx + kLanes * S);
    if (S < full_supers) {
#pragma GCC unroll 16
      for (int j = 0; j < NR; ++j) {
        prefetch.Step();
        __m512i o[8];
        __m512 dw;
        LoadOperands<WT>(w0 + j * p.w_row_bytes + S * super_bytes, o, dw);
        acc[0][j] = OperandUpdate(o, dw, xk, cx, dxv, acc[0][j]);
      }
    } else {
      for (int j = 0; j < NR; ++j) {
        prefetch.Step();
        __m512i o[8];
        __m512 dw;
        BlockOperands<WT>(pm, w0 + j * p.w_row_bytes, S, row_bytes, p.K / kStep, a.steps, o, dw);
        acc[0][j] = OperandUpdate(o, dw, xk, cx, dxv, acc[0][j]);
      }
    }
  }
  FinishTile<1, NR, true>(p, m, n0, acc);
}

// TileOperands for K % 512 != 0 (operand-packed rows whose last superstep is partial: Qwen2.5's
// K = 896 = 1 superstep + 12 blocks, 4864 = 9 + 8): the full supersteps as there, then the
// partial one from its compacted operands (PartialOperands: 8 expanding loads, Q4 4 + mask /
// shift, and one for the scales) instead of unpacking block bytes (3 steps of byte permutes,
// two 4 x 4 transposes and the scale blend per row and call). Same lanes, same bits. Prefetch:
// the next tile, as TileOperands (inside the row streams, RowPrefetch, 512 B ahead: 7-14% more
// CPU time per pass, matmul_lab, cpu-q14 in docs/benchmarks.md). The two superstep loops are
// written out on purpose: one shared always_inline helper (if constexpr on the load) compiled
// differently and ran 7% slower a Qwen q8 pass (matmul_lab --ab --plugin-b, 16.9 -> 18.4 ms).
template <int NR, tsr_dtype WT>
TSR_QK __attribute__((always_inline)) inline void TilePartialOperands(const MatmulProblem& p,
                                                                      int64_t m, int64_t n0) {
  const QuantizedActs& a = *p.qx;
  constexpr int64_t bb = WT == TSR_DTYPE_Q8_B32 ? TSR_BLOCK_Q8_BYTES : TSR_BLOCK_Q4_BYTES;
  constexpr int64_t super_bytes = kSuperBlocks * bb;
  const ActRow x = RowOf(a, m);
  const uint8_t* w0 = p.w + n0 * p.w_row_bytes;
  __m512 acc[1][NR];
  for (int j = 0; j < NR; ++j) acc[0][j] = _mm512_setzero_ps();
  TilePrefetch prefetch(p.w + (n0 + NR) * p.w_row_bytes, NextTileBytes<NR>(p, n0), a.supers * NR);
  const int64_t full_supers = p.K / kSuper;
  for (int64_t S = 0; S < full_supers; ++S) {
    __m512i xk[8];
    for (int k = 0; k < 8; ++k) xk[k] = _mm512_loadu_si512(x.q + kSuper * S + 64 * k);
    const __m512i cx = _mm512_loadu_si512(x.corr + kLanes * S);
    const __m512 dxv = _mm512_loadu_ps(x.dx + kLanes * S);
#pragma GCC unroll 16
    for (int j = 0; j < NR; ++j) {
      prefetch.Step();
      __m512i o[8];
      __m512 dw;
      LoadOperands<WT>(w0 + j * p.w_row_bytes + S * super_bytes, o, dw);
      acc[0][j] = OperandUpdate(o, dw, xk, cx, dxv, acc[0][j]);
    }
  }
  {
    const int64_t S = full_supers, nb = p.K / TSR_QBLOCK - S * kSuperBlocks;
    const __mmask16 lanes = kPartialLanes.mask[nb];
    __m512i xk[8];
    for (int k = 0; k < 8; ++k) xk[k] = _mm512_loadu_si512(x.q + kSuper * S + 64 * k);
    const __m512i cx = _mm512_loadu_si512(x.corr + kLanes * S);
    const __m512 dxv = _mm512_loadu_ps(x.dx + kLanes * S);
#pragma GCC unroll 16
    for (int j = 0; j < NR; ++j) {
      prefetch.Step();
      __m512i o[8];
      __m512 dw;
      PartialOperands<WT>(w0 + j * p.w_row_bytes + S * super_bytes, nb, lanes, o, dw);
      acc[0][j] = OperandUpdate(o, dw, xk, cx, dxv, acc[0][j]);
    }
  }
  FinishTile<1, NR, true>(p, m, n0, acc);
}

// Decode rows over operand-packed weights with a partial last superstep (QMatmulColumns picks
// it, in kernels_qgemm.cc's unit: see there).
template <tsr_dtype WT>
TSR_QK void GemvPartialOperands(const MatmulProblem& p, int64_t n0, int64_t n1) {
  for (int64_t m = 0; m < p.M; ++m) {
    int64_t n = n0;
    for (; n + 8 <= n1; n += 8) TilePartialOperands<8, WT>(p, m, n);
    for (; n < n1; ++n) TilePartialOperands<1, WT>(p, m, n);
  }
}

// The end of an MR x NR tile: lane sums (the halving tree), bias, stores.
// kGemv: the decode tiles' finish (sums through memory).
template <int MR, int NR, bool kGemv>
TSR_QK inline void FinishTile(const MatmulProblem& p, int64_t m0, int64_t n0,
                              const __m512 (&acc)[MR][NR]) {
  // A short last step's missing lanes added fma(0, 0, acc) = acc (acc is never -0: it starts at
  // +0 and a sum is -0 only if both terms are), the portable path's skipped lanes.
  // The lane sums, 16 accumulators per shuffle network (bit-identical to TreeSumVec each).
  if constexpr (kGemv && NR >= 8) {
    // GEMV tiles: the sums through memory, one store each, as before the register-permute path
    // below (written for the GEMM tiles; same bits).
    __m512 v[16];
    alignas(64) float sums[16];
    for (int base = 0; base < NR; base += 16) {
      for (int t = 0; t < 16; ++t) v[t] = base + t < NR ? acc[0][base + t] : _mm512_setzero_ps();
      TreeSum16(v, sums);
      for (int t = 0; t < 16 && base + t < NR; ++t) Store(p, m0, n0 + base + t, sums[t]);
    }
  } else if constexpr (MR * NR >= 8 && 16 % NR == 0) {
    // Rows never straddle two networks (NR divides 16). Each row's NR sums are permuted out of
    // the network's vector and stored (+ bias) at once when the output row is contiguous: a
    // round trip through memory stalled on store forwarding (~6% of a K = 896 GEMM), and GCC
    // 12 turns an element loop into scatters (~15%).
    for (int base = 0; base < MR * NR; base += 16) {
      __m512 tw;
      if constexpr (MR * NR == 8) {  // half a network (the 1 x 8 GEMM tile)
        __m512 v[8];
        for (int t = 0; t < 8; ++t) v[t] = acc[t / NR][t % NR];
        tw = TreeSum8Lanes(v);
      } else {
        __m512 v[16];
        for (int t = 0; t < 16; ++t) {
          const int k = base + t;
          v[t] = k < MR * NR ? acc[k / NR][k % NR] : _mm512_setzero_ps();
        }
        tw = TreeSum16Lanes(v);
      }
      const __mmask16 mk = static_cast<__mmask16>((1u << NR) - 1);
      for (int i = base / NR; i < MR && i * NR < base + 16; ++i) {
        const __m512 r =
            _mm512_permutexvar_ps(_mm512_load_si512(kTreeLanes.idx[i * NR - base]), tw);
        if (p.out_col_stride == 1) {
          float* o = p.out + (m0 + i) * p.out_row_stride + n0;
          // Plain 128/256-bit loads and stores where NR allows: AVX-512 masked stores are slow
          // on Zen (the 0xff-masked store of each 1 x 8 / 2 x 4 tile row cost ~10% of the GEMM).
          if constexpr (NR == 8) {
            __m256 v = _mm512_castps512_ps256(r);
            if (p.bias != nullptr) v = _mm256_add_ps(v, _mm256_loadu_ps(p.bias + n0));
            _mm256_storeu_ps(o, v);
          } else if constexpr (NR == 4) {
            __m128 v = _mm512_castps512_ps128(r);
            if (p.bias != nullptr) v = _mm_add_ps(v, _mm_loadu_ps(p.bias + n0));
            _mm_storeu_ps(o, v);
          } else {
            const __m512 b =
                p.bias != nullptr ? _mm512_maskz_loadu_ps(mk, p.bias + n0) : _mm512_setzero_ps();
            _mm512_mask_storeu_ps(o, mk, p.bias != nullptr ? _mm512_add_ps(r, b) : r);
          }
        } else {
          alignas(64) float row[16];
          _mm512_store_ps(row, r);
          for (int j = 0; j < NR; ++j) Store(p, m0 + i, n0 + j, row[j]);
        }
      }
    }
  } else {
    for (int i = 0; i < MR; ++i) {
      for (int j = 0; j < NR; ++j) Store(p, m0 + i, n0 + j, TreeSumVec(acc[i][j]));
    }
  }
}

// The int8 GEMV tile's prefetch inside its row streams (RowPrefetch, ops.h): one step's bytes
// further into the rows per Step(), SuperRows' once-per-step call.
template <int NR>
struct StepRowPrefetch {
  RowPrefetch<NR> rows;
  int64_t at, step_bytes;
  void Step() {
    rows.Step(at);
    at += step_bytes;
  }
};

// Superstep S of the GEMV tile: kFull full steps, then (kTail) the short last step; the rest of
// the superstep's steps do not exist (their sums are 0). Prefetch: TilePrefetch or
// StepRowPrefetch (Step() once per step).
template <int NR, tsr_dtype WT, int kFull, bool kTail, class Prefetch>
TSR_QK __attribute__((always_inline)) inline void SuperRows(const Perms& pm,
                                                            const uint8_t* const* w,
                                                            const ActRow& x, int64_t S,
                                                            int64_t row_bytes, __m512 (&acc)[1][NR],
                                                            Prefetch& prefetch) {
  constexpr int64_t bb = WT == TSR_DTYPE_Q8_B32 ? TSR_BLOCK_Q8_BYTES : TSR_BLOCK_Q4_BYTES;
  constexpr int64_t step_bytes = kStepBlocks * bb;
  const __m512i cx = _mm512_loadu_si512(x.corr + kLanes * S);
  const __m512 dxv = _mm512_loadu_ps(x.dx + kLanes * S);
  const int64_t g0 = S * kSuperSteps;
#pragma GCC unroll 16
  for (int j = 0; j < NR; ++j) {
    // The next tile's lines for this superstep's steps, spread over its first rows.
    if (j < kFull + (kTail ? 1 : 0)) prefetch.Step();
    __m512i is[kSuperSteps];
    __m256i dh[kSuperSteps];
#pragma GCC unroll 4
    for (int s = 0; s < kSuperSteps; ++s) {
      const int64_t g = g0 + s;
      if (s < kFull) {
        RowStep<WT, false>(pm, w[j] + g * step_bytes, row_bytes - g * step_bytes, x.q + kStep * g,
                           is[s], dh[s]);
      } else if (kTail && s == kFull) {
        RowStep<WT, true>(pm, w[j] + g * step_bytes, row_bytes - g * step_bytes, x.q + kStep * g,
                          is[s], dh[s]);
      } else {
        is[s] = _mm512_setzero_si512();
        dh[s] = _mm256_setzero_si256();
      }
    }
    acc[0][j] = SuperUpdate(is, dh, cx, dxv, acc[0][j]);
  }
}

// GEMV: one activation row (step order) x NR weight rows over all of K, in the canonical order.
// Weights as mapped (row-major ABI blocks; operand-packed ones: TileOperands). Always inlined: once
// the GEMM paths grew, GCC compiled the GEMV tile out of line with a runtime stride and the q8
// decode pass ran ~14% slower (matmul_lab --rows 1 --dtype q8, 22.1 -> 19.1 GB of weights per
// CPU-second); this, with the GEMV finish, brings back about half (20.7). The rest: TreeSum16Lanes
// compiled out of line (now always_inline) and, in the Q4 tile, loop state spilled to the stack
// around the prefetch schedule (now TilePrefetch, ops.h).
template <int NR, tsr_dtype WT, class Prefetch>
TSR_QK __attribute__((always_inline)) inline void TileVnniWith(const MatmulProblem& p,
                                                               const Perms& pm, int64_t m,
                                                               int64_t n0, Prefetch& prefetch) {
  const QuantizedActs& a = *p.qx;
  constexpr int64_t bb = WT == TSR_DTYPE_Q8_B32 ? TSR_BLOCK_Q8_BYTES : TSR_BLOCK_Q4_BYTES;
  const uint8_t* w[NR];
  for (int j = 0; j < NR; ++j) w[j] = p.w + (n0 + j) * p.w_row_bytes;
  const ActRow x = RowOf(a, m);
  __m512 acc[1][NR];
  for (int j = 0; j < NR; ++j) acc[0][j] = _mm512_setzero_ps();
  const int64_t row_bytes = p.K / TSR_QBLOCK * bb;
  const int64_t steps = a.steps, full = p.K / kStep;
  // Whole supersteps of full steps, then the last one (missing steps add nothing; K % 128 != 0:
  // a short last step with masked loads), each with its step count as template arguments so
  // that every step is straight-line code (a runtime check per step ran the K = 896 GEMV ~40%
  // slower).
  int64_t S = 0;
  for (; (S + 1) * kSuperSteps <= full; ++S)
    SuperRows<NR, WT, kSuperSteps, false>(pm, w, x, S, row_bytes, acc, prefetch);
  if (S < a.supers) {
    switch ((full - S * kSuperSteps) * 2 + (full < steps ? 1 : 0)) {
      case 1: SuperRows<NR, WT, 0, true>(pm, w, x, S, row_bytes, acc, prefetch); break;
      case 2: SuperRows<NR, WT, 1, false>(pm, w, x, S, row_bytes, acc, prefetch); break;
      case 3: SuperRows<NR, WT, 1, true>(pm, w, x, S, row_bytes, acc, prefetch); break;
      case 4: SuperRows<NR, WT, 2, false>(pm, w, x, S, row_bytes, acc, prefetch); break;
      case 5: SuperRows<NR, WT, 2, true>(pm, w, x, S, row_bytes, acc, prefetch); break;
      case 6: SuperRows<NR, WT, 3, false>(pm, w, x, S, row_bytes, acc, prefetch); break;
      default: SuperRows<NR, WT, 3, true>(pm, w, x, S, row_bytes, acc, prefetch); break;
    }
  }
  FinishTile<1, NR, true>(p, m, n0, acc);
}

// The GEMV tile over weights as mapped, with its prefetch: inside the NR row streams
// TESSERA_CPU_GEMV_ROW_AHEAD bytes ahead (default 512; the position carries to the caller's
// next tile through *pf_next, 0 for a range's first), or with TESSERA_CPU_GEMV_ROW_AHEAD=0 the
// next tile's rows a few lines per step (TilePrefetch; tiles up to
// TESSERA_CPU_GEMV_PREFETCH_MAX bytes, by default all), the policy before 2026-11-27. Row
// streams vs next tile, one thread, GB of weights per CPU-second (matmul_lab --rows 1, whole
// decode pass incl. the Q8 LM head, dev box): q8 Qwen2.5-0.5B 22-26 vs 14-16.6, Llama-3.2-1B
// 18-23 vs 13-16; q4 Qwen 17-24 vs 14-16 (512 and 768-2048 bytes ahead within the noise).
template <int NR, tsr_dtype WT>
TSR_QK __attribute__((always_inline)) inline void TileVnni(const MatmulProblem& p, const Perms& pm,
                                                           int64_t m, int64_t n0,
                                                           int64_t* pf_next) {
  constexpr int64_t bb = WT == TSR_DTYPE_Q8_B32 ? TSR_BLOCK_Q8_BYTES : TSR_BLOCK_Q4_BYTES;
  const int64_t ahead = PrefetchPolicy().gemv_row_ahead;
  if (ahead > 0) {
    StepRowPrefetch<NR> prefetch{RowPrefetch<NR>(p.w + n0 * p.w_row_bytes, p.w_row_bytes,
                                                 p.K / TSR_QBLOCK * bb, ahead, *pf_next),
                                 0, kStepBlocks * bb};
    TileVnniWith<NR, WT>(p, pm, m, n0, prefetch);
    *pf_next = prefetch.rows.Next();
    return;
  }
  TilePrefetch prefetch(p.w + (n0 + NR) * p.w_row_bytes, NextTileBytes<NR>(p, n0), p.qx->steps);
  TileVnniWith<NR, WT>(p, pm, m, n0, prefetch);
}

// The GEMV tile for the layout of p's weights (row-major, or operand-packed: TileOperands).
template <int NR, tsr_dtype WT>
TSR_QK inline void TileVnniAny(const MatmulProblem& p, const Perms& pm, int64_t m, int64_t n0,
                               int64_t* pf_next) {
  if (p.w_packed)
    TileOperands<NR, WT>(p, pm, m, n0);
  else
    TileVnni<NR, WT>(p, pm, m, n0, pf_next);
}

// GEMM weights, unpacked: per row and superstep, the 8 vpdpbusd operands (operand k, lane l:
// weights 4 k .. 4 k + 3 of block B(l), as unsigned bytes) and the 16 block scales.
constexpr int kWVecs = 9;

// Supersteps [S0, S1) of weight rows [n0, n0 + NR), unpacked into
// out[((S - S0) * NR + j) * kWVecs + ...]: the steps TileVnni unpacks transposed as the
// operands (operand-packed weights: their full supersteps as stored), so no bit changes.
template <int NR, tsr_dtype WT>
TSR_QK void UnpackGroup(const MatmulProblem& p, const Perms& pm, int64_t n0, int64_t S0, int64_t S1,
                        __m512i* out) {
  constexpr int64_t bb = WT == TSR_DTYPE_Q8_B32 ? TSR_BLOCK_Q8_BYTES : TSR_BLOCK_Q4_BYTES;
  constexpr int64_t step_bytes = kStepBlocks * bb;
  const int64_t row_bytes = p.K / TSR_QBLOCK * bb, full = p.K / kStep, steps = p.qx->steps;
  for (int j = 0; j < NR; ++j) {
    const uint8_t* w = p.w + (n0 + j) * p.w_row_bytes;
    for (int64_t S = S0; S < S1; ++S) {
      __m512i* o = out + ((S - S0) * NR + j) * kWVecs;
      if ((S + 1) * kSuperSteps > full) {  // a partial last superstep
        __m512 dw;
        if (p.w_packed) {
          PartialOperandsOf<WT>(w + S * kSuperBlocks * bb, p.K / TSR_QBLOCK - S * kSuperBlocks, o,
                                dw);
        } else {
          BlockOperands<WT>(pm, w, S, row_bytes, full, steps, o, dw);
        }
        o[8] = _mm512_castps_si512(dw);
      } else if (p.w_packed) {
        __m512i v[8];
        __m512 dw;
        LoadOperands<WT>(w + S * kSuperBlocks * bb, v, dw);
        for (int k = 0; k < 8; ++k) o[k] = v[k];
        o[8] = _mm512_castps_si512(dw);
      } else {  // four full steps, straight into registers
        __m512i lo[kSuperSteps], hi[kSuperSteps];
        __m256i dh[kSuperSteps];
        for (int s = 0; s < kSuperSteps; ++s) {
          const int64_t g = S * kSuperSteps + s;
          const StepW st = Unpack<WT, false>(pm, w + g * step_bytes, row_bytes - g * step_bytes);
          lo[s] = st.lo;
          hi[s] = st.hi;
          dh[s] = st.dh;
        }
        Transpose4(lo, o);
        Transpose4(hi, o + 4);
        o[8] = _mm512_castps_si512(BlendScales(dh));
      }
    }
  }
}

// Rows [H, H + R) of an MR x NR GEMM tile, supersteps [S0, S1), over unpacked weights ws
// (UnpackGroup of [S0, S1)) and activations in the operand order. Per superstep the R x NR block
// sums run as independent vpdpbusd chains (operand k of every row meets operand k of every
// weight row), then one float update each.
template <int MR, int NR, int H, int R>
TSR_QK __attribute__((always_inline)) inline void SubTileRange(const ActRow* x, const __m512i* ws,
                                                               int64_t S0, int64_t S1,
                                                               __m512 (&acc)[MR][NR]) {
  for (int64_t S = S0; S < S1; ++S) {
    const __m512i* wS = ws + (S - S0) * NR * kWVecs;
    __m512i t[R][NR];
    for (int i = 0; i < R; ++i) {
      const __m512i c = _mm512_loadu_si512(x[H + i].corr + kLanes * S);
      for (int j = 0; j < NR; ++j) t[i][j] = c;
    }
    for (int k = 0; k < 8; ++k) {
      __m512i xa[R];
      for (int i = 0; i < R; ++i) xa[i] = _mm512_loadu_si512(x[H + i].q + kSuper * S + 64 * k);
      for (int j = 0; j < NR; ++j) {
        const __m512i wb = _mm512_load_si512(wS + j * kWVecs + k);
        for (int i = 0; i < R; ++i) t[i][j] = _mm512_dpbusd_epi32(t[i][j], wb, xa[i]);
      }
    }
    for (int i = 0; i < R; ++i) {
      const __m512 dxv = _mm512_loadu_ps(x[H + i].dx + kLanes * S);
      for (int j = 0; j < NR; ++j) {
        const __m512 dwv = _mm512_castsi512_ps(_mm512_load_si512(wS + j * kWVecs + 8));
        acc[H + i][j] =
            _mm512_fmadd_ps(_mm512_cvtepi32_ps(t[i][j]), _mm512_mul_ps(dwv, dxv), acc[H + i][j]);
      }
    }
  }
}

#if defined(TSR_QGEMM_TU)  // (the main unit keeps its code as it was: kernels_qgemm.cc)
// Rows [H, MR) of an MR x NR tile as sub-tiles of kSub rows one after another (each
// SubTileRange holds R x NR block-sum chains; all MR x NR accumulators stay in registers):
// 8-column tiles run row by row (2 x 8 chains + 2 x 8 accumulators would not fit in 32
// registers), up to 3 rows of narrower ones at once (3 x 4: 12 + 12 + 3 activation operands).
template <int MR, int NR, int H>
TSR_QK __attribute__((always_inline)) inline void SubTiles(const ActRow* x, const __m512i* ws,
                                                           int64_t S0, int64_t S1,
                                                           __m512 (&acc)[MR][NR]) {
  constexpr int kSub = NR >= 8 ? 1 : (MR <= 3 ? MR : 2);
  constexpr int R = MR - H < kSub ? MR - H : kSub;
  SubTileRange<MR, NR, H, R>(x, ws, S0, S1, acc);
  if constexpr (H + R < MR) SubTiles<MR, NR, H + R>(x, ws, S0, S1, acc);
}
#endif

// Supersteps [S0, S1) of an MR x NR GEMM tile (ColumnsVnni: 3 x 4 or 1 x 8; sub-tiles: SubTiles,
// their accumulators held for one shared finish). The accumulators wait in `state` between ranges
// (stored and reloaded exactly, so each lane's sequence of FMAs is the canonical one); the last
// range finishes the tile.
template <int MR, int NR>
TSR_QK __attribute__((always_inline)) inline void TileRange(const MatmulProblem& p, int64_t m0,
                                                            int64_t n0, const __m512i* ws,
                                                            int64_t S0, int64_t S1, __m512* state,
                                                            bool first, bool last) {
  static_assert(MR <= 4, "two sub-tiles of up to 2 rows");
  ActRow x[MR];
  for (int i = 0; i < MR; ++i) x[i] = RowOf(*p.qx, m0 + i);
  __m512 acc[MR][NR];
  for (int i = 0; i < MR; ++i) {
    for (int j = 0; j < NR; ++j)
      acc[i][j] = first ? _mm512_setzero_ps() : _mm512_load_ps(state + i * NR + j);
  }
#if defined(TSR_QGEMM_TU)
  SubTiles<MR, NR, 0>(x, ws, S0, S1, acc);
#else  // the 1 x 8 tile: one row
  constexpr int R0 = MR < 2 ? MR : 2;
  SubTileRange<MR, NR, 0, R0>(x, ws, S0, S1, acc);
  if constexpr (MR > 2) SubTileRange<MR, NR, 2, MR - 2>(x, ws, S0, S1, acc);
#endif
  if (last) {
    FinishTile<MR, NR>(p, m0, n0, acc);
  } else {
    for (int i = 0; i < MR; ++i) {
      for (int j = 0; j < NR; ++j) _mm512_store_ps(state + i * NR + j, acc[i][j]);
    }
  }
}

// Supersteps per unpacked range: NR rows' worth that stay in L1 (24 KiB; 10 supersteps of 4
// rows, K <= 5120 in one range). Lab switch TESSERA_CPU_QGEMM_RANGE_KB, read once, for the 3 x 4
// tiles only (kernels_qgemm.cc; the main unit keeps the constant: see there).
template <int NR>
constexpr int64_t kRangeSupers =
    std::max<int64_t>(1, (24 << 10) / (NR * kWVecs * static_cast<int64_t>(sizeof(__m512i))));
#if defined(TSR_QGEMM_TU)
// The 3 x 4 tiles' range budget: 12 KiB (5 supersteps of 4 rows; K <= 2560 in one range). At
// long K the ranges are balanced (RangeFor): K = 4864 as 5 + 5 supersteps, 8192 as 4 x 4. One
// 24 KiB range at K = 4864 (23 KiB of weights beside three 5 KiB activation rows a tile) ran
// level to 25% slower than two; a short tail range costs (K = 2560 as 2 + 2 + 1 supersteps ran
// ~20% slower than as one range). lab/qgemm_drv.cc; cpu-q8k in docs/benchmarks.md.
template <int NR>
inline int64_t RangeSupers() {
  static const int64_t kb = [] {
    const char* e = std::getenv("TESSERA_CPU_QGEMM_RANGE_KB");
    return e != nullptr && *e != '\0' ? std::atoll(e) : 12;
  }();
  return std::max<int64_t>(1, (kb << 10) / (NR * kWVecs * static_cast<int64_t>(sizeof(__m512i))));
}

// Supersteps per range for `supers` supersteps: as few ranges as RangeSupers allows, of equal
// length (the last one up to one superstep shorter), so no range is a short tail.
template <int NR>
inline int64_t RangeFor(int64_t supers) {
  const int64_t max = RangeSupers<NR>(), ranges = (supers + max - 1) / max;
  return (supers + ranges - 1) / ranges;
}
#endif

// Walks the cache lines of steps [s0, s1) of weight rows n, n + 1, ... (a row's step may
// straddle one more line than its size), prefetching them into L2 a few at a time; counters
// instead of a division per line (two 64-bit divisions a line cost ~10% of a K = 4864 GEMM).
template <tsr_dtype WT>
class StepLines {
 public:
  static constexpr int64_t kStepBytes =
      kStepBlocks * (WT == TSR_DTYPE_Q8_B32 ? TSR_BLOCK_Q8_BYTES : TSR_BLOCK_Q4_BYTES);
  static constexpr int64_t kPerStep = (kStepBytes + 63) / 64 + 1;

  StepLines(const MatmulProblem& p, int64_t n, int64_t s0, int64_t s1)
      : p_(p), r_(n), s0_(s0), s1_(s1), s_(s0) {
    row_ = RowBase();
  }
  void Issue(int64_t count) {
    for (int64_t i = 0; i < count && s0_ < s1_; ++i) {
      _mm_prefetch(reinterpret_cast<const char*>(row_ + s_ * kStepBytes) + 64 * l_, _MM_HINT_T1);
      if (++l_ < kPerStep) continue;
      l_ = 0;
      if (++s_ < s1_) continue;
      s_ = s0_;
      ++r_;
      row_ = RowBase();
    }
  }

 private:
  const uint8_t* RowBase() const {
    return p_.w + r_ * p_.w_row_bytes;  // operand-packed rows keep their bytes in place
  }
  const MatmulProblem& p_;
  int64_t r_, s0_, s1_, s_, l_ = 0;
  const uint8_t* row_;
};

// `tiles` MR-row tiles from row m0 (TileRange each, in one call: the call, frame and pointer
// set-up per 2 x 4 tile were ~8% of a K = 896 GEMM), issuing `per_tile` of the next weight
// range's lines into L2 before each.
template <int MR, int NR, tsr_dtype WT>
TSR_QK void TilesRange(const MatmulProblem& p, int64_t m0, int64_t tiles, int64_t n0,
                       const __m512i* ws, int64_t S0, int64_t S1, __m512* state, bool first,
                       bool last, StepLines<WT>& next, int64_t per_tile) {
  for (int64_t t = 0; t < tiles; ++t) {
    next.Issue(per_tile);
    TileRange<MR, NR>(p, m0 + t * MR, n0, ws, S0, S1, state + t * MR * NR, first, last);
  }
}

// Rows [m0, m1) x weight rows [n0, n1) (GEMM, m1 - m0 >= 1): NR-row groups, each unpacked once
// per panel a range of supersteps at a time (`scratch`, >= RangeSupers<NR>() x NR x kWVecs
// vectors, stays in L1) and reused by all the panel's MR-row tiles (`state`: >= (m1 - m0) x NR
// vectors), then the leftover rows and weight rows. Meanwhile the next range's weight bytes are
// prefetched into L2, a few lines per tile.
template <int MR, int NR, tsr_dtype WT>
TSR_QK void BlockVnni(const MatmulProblem& p, const Perms& pm, int64_t m0, int64_t m1, int64_t n0,
                      int64_t n1, __m512i* scratch, __m512* state) {
#if defined(TSR_QGEMM_TU)
  const int64_t supers = p.qx->supers, steps = p.qx->steps, range = RangeFor<NR>(supers);
#else
  const int64_t supers = p.qx->supers, steps = p.qx->steps, range = kRangeSupers<NR>;
#endif
  const int64_t tiles = (m1 - m0) / MR, rest = (m1 - m0) % MR;
  int64_t n = n0;
  for (; n + NR <= n1; n += NR) {
    for (int64_t S0 = 0; S0 < supers; S0 += range) {
      const int64_t S1 = std::min(supers, S0 + range);
      UnpackGroup<NR, WT>(p, pm, n, S0, S1, scratch);
      // What the next UnpackGroup reads: this group's next range, else the next group's first.
      int64_t pn = n, pS0 = S1;
      if (pS0 >= supers) pn = n + NR, pS0 = 0;
      const int64_t ps0 = pS0 * kSuperSteps;
      const int64_t ps1 = std::min(steps, (pS0 + range) * kSuperSteps);
#if defined(TSR_QGEMM_TU)
      // Only where K is one range: with several (K > 2560), any of these prefetches (the next
      // range, the next group's first range or its whole rows) ran 3-15% slower than none
      // (lab/qgemm_drv.cc, K = 4864 / 8192, q8 / q4; at K = 896 / 2048 none was level or -4%).
      const int64_t lines =
          pn + NR <= n1 && supers <= range ? NR * (ps1 - ps0) * StepLines<WT>::kPerStep : 0;
#else
      const int64_t lines = pn + NR <= n1 ? NR * (ps1 - ps0) * StepLines<WT>::kPerStep : 0;
#endif
      StepLines<WT> next(p, pn, ps0, ps1);
      const int64_t per_tile = tiles > 0 ? (lines + tiles - 1) / tiles : 0;
      TilesRange<MR, NR, WT>(p, m0, tiles, n, scratch, S0, S1, state, S0 == 0, S1 == supers, next,
                             per_tile);
      TilesRange<1, NR, WT>(p, m0 + tiles * MR, rest, n, scratch, S0, S1, state + tiles * MR * NR,
                            S0 == 0, S1 == supers, next, 0);
    }
  }
  if constexpr (NR > 1) {
    if (n < n1) BlockVnni<MR, 1, WT>(p, pm, m0, m1, n, n1, scratch, state);
  }
}

// GEMM register tiles (QMatmulColumns picks, Int8GemmTile3x4). 1 x 8: 8 block-sum chains + 8
// accumulators + 1 activation and 1 weight operand in registers; each activation operand (L2)
// meets 8 weight rows (L1): 8 weight loads per activation load, ~1.1 loads per vpdpbusd. 3 x 4:
// 12 chains + 12 accumulators + 3 activation operands, each weight operand feeding 3 rows: ~0.6
// loads per vpdpbusd, and a tile's finish (one lane-sum network, three row stores) per 96
// vpdpbusd a superstep instead of 64. int8_ladder (backends/cpu/lab): 1 x 8 0.52, 3 x 4 0.69 of
// the probe's rate over a K = 896 panel; in the kernel 3 x 4 is +17-20% at K = 896, and at
// K = 4864 / 8192 +16-18% / +8-11% with balanced 12 KiB ranges (RangeFor) and no L2 prefetch
// across ranges (with the 24 KiB range K = 4864 ran level or slower). 1 x 8 is left as the lab
// switch's (TESSERA_CPU_QGEMM_TILE=18). (2 x 4 ran level with 1 x 8, 4 x 4 as two 2 x 4 sub-tiles
// spilled its accumulators.)
constexpr int kGemmRows = 1, kGemmCols = 8;  // the 1 x 8 tile (ColumnsVnni)

#if defined(TSR_QGEMM_TU)
// Prefill: panels of activation rows that stay in L2 (1.25 bytes a value: q, corr, dx; up to
// 512 KiB) while each group of NR weight rows is swept past them in MR-row tiles.
template <int MR, int NR, tsr_dtype WT>
TSR_QK void GemmPanels(const MatmulProblem& p, const Perms& pm, int64_t n0, int64_t n1) {
  const int64_t supers = p.qx->supers;
  // TESSERA_CPU_QGEMM_PANEL_KB: lab switch for the panel's L2 budget (matmul_lab --only down,
  // q8, one thread: 256 / 512 / 768 / 1024 KiB read 248-324 / 316-334 / 285-315 / 258-318 int8
  // GOP per CPU-second; up level).
  static const int64_t budget = [] {
    const char* e = std::getenv("TESSERA_CPU_QGEMM_PANEL_KB");
    return (e != nullptr && *e != '\0' ? std::atoll(e) : 512) << 10;
  }();
  const int64_t panel = std::max<int64_t>(MR, budget / (supers * (kSuper + 128)) / MR * MR);
  // (BlockVnni's leftover weight rows run as one-row groups with their own range.)
  __m512i* scratch = GroupScratch(
      static_cast<size_t>(std::max(RangeSupers<NR>() * NR, RangeSupers<1>()) * kWVecs));
  __m512* state = TileState(static_cast<size_t>(panel * NR));
  for (int64_t m = 0; m < p.M; m += panel) {
    const int64_t me = std::min(p.M, m + panel);
    BlockVnni<MR, NR, WT>(p, pm, m, me, n0, n1, scratch, state);
  }
}
#endif

template <tsr_dtype WT>
TSR_QK void ColumnsVnni(const MatmulProblem& p, int64_t n0, int64_t n1) {
  const Perms pm = MakePerms();
  if (p.M <= 2) {  // decode: stream the weights once per row
    for (int64_t m = 0; m < p.M; ++m) {
      int64_t n = n0, pf8 = 0, pf1 = 0;  // the GEMV prefetch's position, carried tile to tile
      for (; n + 8 <= n1; n += 8) TileVnniAny<8, WT>(p, pm, m, n, &pf8);
      for (; n < n1; ++n) TileVnniAny<1, WT>(p, pm, m, n, &pf1);
    }
    return;
  }
  // Prefill: panels of activation rows that stay in L2 (1.25 bytes a value: q, corr, dx; up to
  // 512 KiB) while each group of weight rows is swept past them.
  const int64_t supers = p.qx->supers;
  // TESSERA_CPU_QGEMM_PANEL_KB: lab switch for the panel's L2 budget (matmul_lab --only down,
  // q8, one thread: 256 / 512 / 768 / 1024 KiB read 248-324 / 316-334 / 285-315 / 258-318 int8
  // GOP per CPU-second; up level).
  static const int64_t budget = [] {
    const char* e = std::getenv("TESSERA_CPU_QGEMM_PANEL_KB");
    return (e != nullptr && *e != '\0' ? std::atoll(e) : 512) << 10;
  }();
  const int64_t panel =
      std::max<int64_t>(kGemmRows, budget / (supers * (kSuper + 128)) / kGemmRows * kGemmRows);
  // (BlockVnni's leftover weight rows run as one-row groups with their own range.)
  __m512i* scratch = GroupScratch(
      static_cast<size_t>(std::max(kRangeSupers<kGemmCols> * kGemmCols, kRangeSupers<1>) * kWVecs));
  __m512* state = TileState(static_cast<size_t>(panel * kGemmCols));
  for (int64_t m = 0; m < p.M; m += panel) {
    const int64_t me = std::min(p.M, m + panel);
    BlockVnni<kGemmRows, kGemmCols, WT>(p, pm, m, me, n0, n1, scratch, state);
  }
}
