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
  w.dw = _mm512_cvtph_ps(_mm512_castsi512_si256(_mm512_permutexvar_epi16(pm.q4_scales, l0)));
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
  w.dw = _mm512_cvtph_ps(_mm512_castsi512_si256(_mm512_permutex2var_epi16(l0, pm.q8_scales, l1)));
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
  w.dw = _mm512_cvtph_ps(_mm512_castsi512_si256(_mm512_permutexvar_epi16(pm.q4_scales, l0)));
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
  w.dw = _mm512_cvtph_ps(_mm512_castsi512_si256(_mm512_permutex2var_epi16(l0, pm.q8_scales, l1)));
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

// One step s of an MR x NR tile: weight bytes from offset `off` of each row (`have` of them
// left), activations of step s.
template <int MR, int NR, tsr_dtype WT, bool kTail>
TSR_QK inline void TileStep(const Perms& pm, const uint8_t* const* w, const ActRow* x, int64_t off,
                            int64_t have, int64_t s, __m512 (&acc)[MR][NR]) {
  if constexpr (MR == 1) {
    // GEMV: weight row by weight row, each unpacked step (3 registers) used right away.
    // Unpacking all NR rows first would need 3 NR registers next to the accumulators and spill.
    const __m512i cv = _mm512_loadu_si512(x[0].corr + kStepCorr * s);
    const __m512i xlo = _mm512_loadu_si512(x[0].q + kStep * s);
    const __m512i xhi = _mm512_loadu_si512(x[0].q + kStep * s + 64);
    const __m512 dxv = _mm512_loadu_ps(x[0].dx + kStepCorr * s);
    for (int j = 0; j < NR; ++j) {
      const StepW wv = Unpack<WT, kTail>(pm, w[j] + off, have);
      const __m512i isum = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(cv, wv.lo, xlo), wv.hi, xhi);
      acc[0][j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_mul_ps(wv.dw, dxv), acc[0][j]);
    }
  } else {
    // GEMM: the NR unpacked steps (3 NR registers) stay in registers while each activation
    // row's step (4 registers) meets them: MR x NR accumulators + 3 NR + 4 must fit in 32.
    StepW wv[NR];
    for (int j = 0; j < NR; ++j) wv[j] = Unpack<WT, kTail>(pm, w[j] + off, have);
    for (int i = 0; i < MR; ++i) {
      const __m512i cv = _mm512_loadu_si512(x[i].corr + kStepCorr * s);
      const __m512i xlo = _mm512_loadu_si512(x[i].q + kStep * s);
      const __m512i xhi = _mm512_loadu_si512(x[i].q + kStep * s + 64);
      const __m512 dxv = _mm512_loadu_ps(x[i].dx + kStepCorr * s);
      for (int j = 0; j < NR; ++j) {
        const __m512i isum =
            _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(cv, wv[j].lo, xlo), wv[j].hi, xhi);
        acc[i][j] =
            _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_mul_ps(wv[j].dw, dxv), acc[i][j]);
      }
    }
  }
}

// MR activation rows x NR weight rows over all of K, in the canonical order.
template <int MR, int NR, tsr_dtype WT>
TSR_QK void TileVnni(const MatmulProblem& p, const Perms& pm, int64_t m0, int64_t n0) {
  const QuantizedActs& a = *p.qx;
  constexpr int64_t bb = WT == TSR_DTYPE_Q8_B32 ? TSR_BLOCK_Q8_BYTES : TSR_BLOCK_Q4_BYTES;
  constexpr int64_t step_bytes = kStepBlocks * bb;
  const uint8_t* w[NR];
  for (int j = 0; j < NR; ++j) w[j] = p.w + (n0 + j) * p.w_row_bytes;
  ActRow x[MR];
  for (int i = 0; i < MR; ++i) x[i] = RowOf(a, m0 + i);
  __m512 acc[MR][NR];
  for (int i = 0; i < MR; ++i) {
    for (int j = 0; j < NR; ++j) acc[i][j] = _mm512_setzero_ps();
  }
  const int64_t row_bytes = p.K / TSR_QBLOCK * bb;
  // GEMV (MR == 1): prefetch the next tile's rows a few lines per step, so memory sees one long
  // stream instead of NR short ones, with more lines in flight (as the f32 GEMV does; tiles up
  // to TESSERA_CPU_GEMV_PREFETCH_MAX bytes, by default all).
  const int64_t next_rows = std::min<int64_t>(NR, p.N - n0 - NR);
  const int64_t pf_bytes =
      MR == 1 && next_rows > 0 && NR * p.w_row_bytes <= PrefetchPolicy().gemv_max_tile_bytes
          ? next_rows * p.w_row_bytes
          : 0;
  const char* pf = reinterpret_cast<const char*>(p.w + (n0 + NR) * p.w_row_bytes);
  int64_t pf_done = 0;
  const int64_t steps = a.steps;
  // Full steps, then (K % 128 != 0) the short last one with masked loads.
  const int64_t full = p.K / kStep;
  for (int64_t s = 0; s < full; ++s) {
    for (const int64_t due = pf_bytes * (s + 1) / steps; pf_done < due; pf_done += 64)
      _mm_prefetch(pf + pf_done, _MM_HINT_T0);
    TileStep<MR, NR, WT, false>(pm, w, x, s * step_bytes, row_bytes - s * step_bytes, s, acc);
  }
  if (full < steps) {
    TileStep<MR, NR, WT, true>(pm, w, x, full * step_bytes, row_bytes - full * step_bytes, full,
                               acc);
  }
  // A short last step's missing lanes added fma(0, 0, acc) = acc (acc is never -0: it starts at
  // +0 and a sum is -0 only if both terms are), the portable path's skipped lanes.
  // The lane sums, 16 accumulators per shuffle network (bit-identical to TreeSumVec each).
  if constexpr (MR * NR >= 8) {
    __m512 v[16];
    float sums[16];
    for (int base = 0; base < MR * NR; base += 16) {
      for (int t = 0; t < 16; ++t) {
        const int k = base + t;
        v[t] = k < MR * NR ? acc[k / NR][k % NR] : _mm512_setzero_ps();
      }
      TreeSum16(v, sums);
      for (int t = 0; t < 16 && base + t < MR * NR; ++t) {
        const int k = base + t;
        Store(p, m0 + k / NR, n0 + k % NR, sums[t]);
      }
    }
  } else {
    for (int i = 0; i < MR; ++i) {
      for (int j = 0; j < NR; ++j) Store(p, m0 + i, n0 + j, TreeSumVec(acc[i][j]));
    }
  }
}

// Rows [m0, m1) x weight rows [n0, n1): NR-row groups, MR-row tiles, then the leftovers.
template <int MR, int NR, tsr_dtype WT>
TSR_QK void BlockVnni(const MatmulProblem& p, const Perms& pm, int64_t m0, int64_t m1, int64_t n0,
                      int64_t n1) {
  int64_t n = n0;
  for (; n + NR <= n1; n += NR) {
    int64_t m = m0;
    for (; m + MR <= m1; m += MR) TileVnni<MR, NR, WT>(p, pm, m, n);
    for (; m < m1; ++m) TileVnni<1, NR, WT>(p, pm, m, n);
  }
  for (; n < n1; ++n) {
    int64_t m = m0;
    for (; m + MR <= m1; m += MR) TileVnni<MR, 1, WT>(p, pm, m, n);
    for (; m < m1; ++m) TileVnni<1, 1, WT>(p, pm, m, n);
  }
}

// GEMM register tile: kGemmRows activation rows x 4 weight rows (12 accumulators + 12 unpacked
// weight registers + 4 activation registers; 4 x 4 spilled and ran slower).
constexpr int kGemmRows = 3;

template <tsr_dtype WT>
TSR_QK void ColumnsVnni(const MatmulProblem& p, int64_t n0, int64_t n1) {
  const Perms pm = MakePerms();
  if (p.M <= 2) {  // decode: stream the weights once per row
    for (int64_t m = 0; m < p.M; ++m) BlockVnni<1, 8, WT>(p, pm, m, m + 1, n0, n1);
    return;
  }
  // Prefill: panels of activation rows that stay in L2 (~1.5 bytes a value: q, corr, dx) while
  // each group of weight rows is swept past them.
  const int64_t panel =
      std::max<int64_t>(kGemmRows, (512 << 10) / (2 * p.K) / kGemmRows * kGemmRows);
  for (int64_t m = 0; m < p.M; m += panel) {
    BlockVnni<kGemmRows, 4, WT>(p, pm, m, std::min(p.M, m + panel), n0, n1);
  }
}
