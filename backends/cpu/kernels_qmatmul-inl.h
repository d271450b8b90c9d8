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
// One step s of an MR x NR GEMM tile over unpacked weights ws[0, NR) (UnpackGroup): the MR
// activation rows' step (4 MR registers) stays in registers while each weight row's step is
// loaded (3 registers) and meets all of them, so NR can exceed what 3 NR registers of weights
// would allow.
template <int MR, int NR>
TSR_QK inline void PackedStep(const StepW* ws, const ActRow* x, int64_t s, __m512 (&acc)[MR][NR]) {
  __m512i cv[MR], xlo[MR], xhi[MR];
  __m512 dxv[MR];
  for (int i = 0; i < MR; ++i) {
    cv[i] = _mm512_loadu_si512(x[i].corr + kStepCorr * s);
    xlo[i] = _mm512_loadu_si512(x[i].q + kStep * s);
    xhi[i] = _mm512_loadu_si512(x[i].q + kStep * s + 64);
    dxv[i] = _mm512_loadu_ps(x[i].dx + kStepCorr * s);
  }
  for (int j = 0; j < NR; ++j) {
    const StepW& wj = ws[j];
    for (int i = 0; i < MR; ++i) {
      const __m512i isum =
          _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(cv[i], wj.lo, xlo[i]), wj.hi, xhi[i]);
      acc[i][j] =
          _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_mul_ps(wj.dw, dxv[i]), acc[i][j]);
    }
  }
}

// `packed` (GEMM): the tile's weight steps already unpacked by UnpackGroup, NR per step.
template <int MR, int NR, tsr_dtype WT, bool kTail>
TSR_QK inline void TileStep(const Perms& pm, const uint8_t* const* w, const ActRow* x, int64_t off,
                            int64_t have, int64_t s, __m512 (&acc)[MR][NR],
                            const StepW* packed = nullptr) {
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
  } else if (packed != nullptr) {
    PackedStep<MR, NR>(packed + s * NR, x, s, acc);
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

// The end of an MR x NR tile: lane sums (the halving tree), bias, stores.
template <int MR, int NR>
TSR_QK inline void FinishTile(const MatmulProblem& p, int64_t m0, int64_t n0,
                              const __m512 (&acc)[MR][NR]) {
  // A short last step's missing lanes added fma(0, 0, acc) = acc (acc is never -0: it starts at
  // +0 and a sum is -0 only if both terms are), the portable path's skipped lanes.
  // The lane sums, 16 accumulators per shuffle network (bit-identical to TreeSumVec each).
  if constexpr (MR == 1 && NR >= 8) {
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
      __m512 v[16];
      for (int t = 0; t < 16; ++t) {
        const int k = base + t;
        v[t] = k < MR * NR ? acc[k / NR][k % NR] : _mm512_setzero_ps();
      }
      const __m512 tw = TreeSum16Lanes(v);
      const __mmask16 mk = static_cast<__mmask16>((1u << NR) - 1);
      for (int i = base / NR; i < MR && i * NR < base + 16; ++i) {
        const __m512 r =
            _mm512_permutexvar_ps(_mm512_load_si512(kTreeLanes.idx[i * NR - base]), tw);
        if (p.out_col_stride == 1) {
          const __m512 b =
              p.bias != nullptr ? _mm512_maskz_loadu_ps(mk, p.bias + n0) : _mm512_setzero_ps();
          _mm512_mask_storeu_ps(p.out + (m0 + i) * p.out_row_stride + n0, mk,
                                p.bias != nullptr ? _mm512_add_ps(r, b) : r);
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

// MR activation rows x NR weight rows over all of K, in the canonical order. `packed`: the NR
// rows' steps unpacked by UnpackGroup (GEMM), or null to unpack them here.
// kPacked: p.w_packed as a template argument (constant step offsets for row-major weights), and
// always inlined: once the GEMM paths grew, GCC compiled the GEMV tile out of line with a runtime
// stride and the q8 decode pass ran ~14% slower (matmul_lab --rows 1 --dtype q8, 22.1 -> 19.1 GB
// of weights per CPU-second); this, with the GEMV finish below, brings back about half (20.7).
// The rest: TreeSum16Lanes compiled out of line (now always_inline) and, in the Q4 tile, loop
// state spilled to the stack around the prefetch schedule (now TilePrefetch, ops.h): in-cache
// passes (--only k) q8 38.7 -> 42.4, q4 25.9 -> 29.8 GB per CPU-second (the fifth session's
// build: 43.9, 30.3).
template <int MR, int NR, tsr_dtype WT, bool kPacked = false>
TSR_QK __attribute__((always_inline)) inline void TileVnni(const MatmulProblem& p, const Perms& pm,
                                                           int64_t m0, int64_t n0,
                                                           const StepW* packed = nullptr) {
  const QuantizedActs& a = *p.qx;
  constexpr int64_t bb = WT == TSR_DTYPE_Q8_B32 ? TSR_BLOCK_Q8_BYTES : TSR_BLOCK_Q4_BYTES;
  constexpr int64_t step_bytes = kStepBlocks * bb;
  const uint8_t* w[NR];
  // Packed weights (option repack, packed_weights.h; K % 128 == 0): a row's steps lie 8 steps
  // apart, interleaved with the other rows of its 8-row tile.
  constexpr int64_t step_stride = kPacked ? 8 * step_bytes : step_bytes;
  for (int j = 0; j < NR; ++j) {
    const int64_t n = n0 + j;
    w[j] = kPacked ? p.w + n / 8 * 8 * p.w_row_bytes + n % 8 * step_bytes : p.w + n * p.w_row_bytes;
  }
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
  const int64_t steps = a.steps;
  TilePrefetch prefetch(p.w + (n0 + NR) * p.w_row_bytes, pf_bytes, steps);
  // Full steps, then (K % 128 != 0) the short last one with masked loads.
  const int64_t full = p.K / kStep;
  for (int64_t s = 0; s < full; ++s) {
    prefetch.Step();
    TileStep<MR, NR, WT, false>(pm, w, x, s * step_stride, row_bytes - s * step_bytes, s, acc,
                                packed);
  }
  if (full < steps) {
    TileStep<MR, NR, WT, true>(pm, w, x, full * step_bytes, row_bytes - full * step_bytes, full,
                               acc, packed);
  }
  FinishTile<MR, NR>(p, m0, n0, acc);
}

// TileVnni for the layout of p's weights (row-major or packed).
template <int MR, int NR, tsr_dtype WT>
TSR_QK inline void TileVnniAny(const MatmulProblem& p, const Perms& pm, int64_t m0, int64_t n0) {
  if (p.w_packed)
    TileVnni<MR, NR, WT, true>(p, pm, m0, n0);
  else
    TileVnni<MR, NR, WT, false>(p, pm, m0, n0);
}

// Steps [s0, s1) of weight rows [n0, n0 + NR), unpacked into out[(s - s0) * NR + j]: the
// values TileStep would unpack (rows addressed as TileVnni does, packed weights included), so
// no bit changes.
template <int NR, tsr_dtype WT>
TSR_QK void UnpackGroup(const MatmulProblem& p, const Perms& pm, int64_t n0, int64_t s0, int64_t s1,
                        StepW* out) {
  constexpr int64_t bb = WT == TSR_DTYPE_Q8_B32 ? TSR_BLOCK_Q8_BYTES : TSR_BLOCK_Q4_BYTES;
  constexpr int64_t step_bytes = kStepBlocks * bb;
  const int64_t row_bytes = p.K / TSR_QBLOCK * bb, full = p.K / kStep;
  const int64_t step_stride = p.w_packed ? 8 * step_bytes : step_bytes;
  for (int j = 0; j < NR; ++j) {
    const int64_t n = n0 + j;
    const uint8_t* w =
        p.w_packed ? p.w + n / 8 * 8 * p.w_row_bytes + n % 8 * step_bytes : p.w + n * p.w_row_bytes;
    for (int64_t s = s0; s < std::min(s1, full); ++s)
      out[(s - s0) * NR + j] =
          Unpack<WT, false>(pm, w + s * step_stride, row_bytes - s * step_bytes);
    if (full >= s0 && full < s1)
      out[(full - s0) * NR + j] =
          Unpack<WT, true>(pm, w + full * step_bytes, row_bytes - full * step_bytes);
  }
}

// Steps [s0, s1) of an MR x NR tile over unpacked weights ws (UnpackGroup of [s0, s1)). The
// accumulators wait in `state` between step ranges (stored and reloaded exactly, so each lane's
// sequence of FMAs is that of TileVnni); the last range finishes the tile.
template <int MR, int NR>
TSR_QK void TileRange(const MatmulProblem& p, int64_t m0, int64_t n0, const StepW* ws, int64_t s0,
                      int64_t s1, __m512* state, bool first, bool last) {
  ActRow x[MR];
  for (int i = 0; i < MR; ++i) x[i] = RowOf(*p.qx, m0 + i);
  __m512 acc[MR][NR];
  for (int i = 0; i < MR; ++i) {
    for (int j = 0; j < NR; ++j)
      acc[i][j] = first ? _mm512_setzero_ps() : _mm512_load_ps(state + i * NR + j);
  }
  for (int64_t s = s0; s < s1; ++s) PackedStep<MR, NR>(ws + (s - s0) * NR, x, s, acc);
  if (last) {
    FinishTile<MR, NR>(p, m0, n0, acc);
  } else {
    for (int i = 0; i < MR; ++i) {
      for (int j = 0; j < NR; ++j) _mm512_store_ps(state + i * NR + j, acc[i][j]);
    }
  }
}

// Steps per unpacked range: NR rows' worth that stay in L1 (24 KiB; 16 steps of 8 rows).
template <int NR>
constexpr int64_t kRangeSteps = (24 << 10) / (NR * static_cast<int64_t>(sizeof(StepW)));

// Prefetches (into L2) the weight bytes of steps [s0, s1) of rows [n, n + nr), line `from` to
// line `to` of that list (a row's step may straddle one more line than its size).
template <tsr_dtype WT>
TSR_QK inline void PrefetchSteps(const MatmulProblem& p, int64_t n, int64_t s0, int64_t s1,
                                 int64_t from, int64_t to) {
  constexpr int64_t bb = WT == TSR_DTYPE_Q8_B32 ? TSR_BLOCK_Q8_BYTES : TSR_BLOCK_Q4_BYTES;
  constexpr int64_t step_bytes = kStepBlocks * bb, per_step = (step_bytes + 63) / 64 + 1;
  const int64_t step_stride = p.w_packed ? 8 * step_bytes : step_bytes;
  for (int64_t l = from; l < to; ++l) {
    const int64_t row = l / ((s1 - s0) * per_step), rest = l % ((s1 - s0) * per_step);
    const int64_t r = n + row, s = s0 + rest / per_step;
    const uint8_t* w =
        p.w_packed ? p.w + r / 8 * 8 * p.w_row_bytes + r % 8 * step_bytes : p.w + r * p.w_row_bytes;
    _mm_prefetch(reinterpret_cast<const char*>(w + s * step_stride) + 64 * (rest % per_step),
                 _MM_HINT_T1);
  }
}

// Rows [m0, m1) x weight rows [n0, n1): NR-row groups, MR-row tiles, then the leftovers. With
// `scratch` (>= kRangeSteps<NR> x NR StepW) and `state` (>= (m1 - m0) / MR x MR x NR vectors),
// each group is unpacked once per panel, a range of steps at a time that stays in L1, and
// reused by all the panel's rows: the unpacking (~13 instructions a weight row and step, as
// many as three activation rows' dot products with it) no longer repeats for every MR rows.
// Meanwhile the next range's bytes are prefetched into L2, a few lines per tile.
template <int MR, int NR, tsr_dtype WT>
TSR_QK void BlockVnni(const MatmulProblem& p, const Perms& pm, int64_t m0, int64_t m1, int64_t n0,
                      int64_t n1, StepW* scratch = nullptr, __m512* state = nullptr) {
  constexpr int64_t bb = WT == TSR_DTYPE_Q8_B32 ? TSR_BLOCK_Q8_BYTES : TSR_BLOCK_Q4_BYTES;
  constexpr int64_t per_step = (kStepBlocks * bb + 63) / 64 + 1;
  const int64_t steps = p.qx->steps, range = kRangeSteps<NR>;
  int64_t n = n0;
  for (; n + NR <= n1; n += NR) {
    int64_t m = m0;
    if (scratch != nullptr && m1 - m0 >= MR) {
      const int64_t tiles = (m1 - m0) / MR;
      for (int64_t s0 = 0; s0 < steps; s0 += range) {
        const int64_t s1 = std::min(steps, s0 + range);
        UnpackGroup<NR, WT>(p, pm, n, s0, s1, scratch);
        // What the next UnpackGroup reads: this group's next range, else the next group's first.
        int64_t pn = n, ps0 = s1;
        if (ps0 >= steps) pn = n + NR, ps0 = 0;
        const int64_t ps1 = std::min(steps, ps0 + range);
        const int64_t lines = pn + NR <= n1 ? NR * (ps1 - ps0) * per_step : 0;
        int64_t done = 0;
        for (int64_t t = 0; t < tiles; ++t) {
          const int64_t due = lines * (t + 1) / tiles;
          PrefetchSteps<WT>(p, pn, ps0, ps1, done, due);
          done = due;
          TileRange<MR, NR>(p, m0 + t * MR, n, scratch, s0, s1, state + t * MR * NR, s0 == 0,
                            s1 == steps);
        }
      }
      m = m0 + tiles * MR;
    }
    for (; m + MR <= m1; m += MR) TileVnniAny<MR, NR, WT>(p, pm, m, n);
    for (; m < m1; ++m) TileVnniAny<1, NR, WT>(p, pm, m, n);
  }
  for (; n < n1; ++n) {
    int64_t m = m0;
    for (; m + MR <= m1; m += MR) TileVnniAny<MR, 1, WT>(p, pm, m, n);
    for (; m < m1; ++m) TileVnniAny<1, 1, WT>(p, pm, m, n);
  }
}

// GEMM register tile: kGemmRows activation rows x 4 weight rows (12 accumulators + 12 unpacked
// weight registers + 4 activation registers; 4 x 4 spilled and ran slower).
constexpr int kGemmRows = 3;
// GEMM tile over unpacked weights (UnpackGroup; the group stays in cache while a panel of
// activation rows streams past it): 2 activation rows x 8 weight rows (16 accumulators, 8
// activation registers, 3 for the weight row in flight) reads half the activation bytes per dot
// product of the 3 x 4 tile (which was level with it at K = 896; 3 x 6 and 4 x 4 spill).
constexpr int kPackedRows = 2, kPackedCols = 8;

template <tsr_dtype WT>
TSR_QK void ColumnsVnni(const MatmulProblem& p, int64_t n0, int64_t n1) {
  const Perms pm = MakePerms();
  if (p.M <= 2) {  // decode: stream the weights once per row
    for (int64_t m = 0; m < p.M; ++m) BlockVnni<1, 8, WT>(p, pm, m, m + 1, n0, n1);
    return;
  }
  // Prefill: panels of activation rows that stay in L2 (~1.5 bytes a value: q, corr, dx) while
  // each group of weight rows is swept past them; a multiple of every tile's rows, so no row of
  // a panel falls to the one-row tile.
  constexpr int64_t kRows = 6;
  const int64_t panel = std::max<int64_t>(kRows, (512 << 10) / (2 * p.K) / kRows * kRows);
  const size_t range_w =
      static_cast<size_t>(std::max(kRangeSteps<kPackedCols> * kPackedCols, kRangeSteps<4> * 4));
  StepW* scratch = GroupScratch(range_w);
  // Accumulators of every tile of a panel between step ranges (K > 16 x 128 only).
  __m512* state = TileState(static_cast<size_t>(panel / kPackedRows * kPackedRows * kPackedCols +
                                                panel / kGemmRows * kGemmRows * 4));
  for (int64_t m = 0; m < p.M; m += panel) {
    const int64_t me = std::min(p.M, m + panel);
    const int64_t nb = n0 + (n1 - n0) / kPackedCols * kPackedCols;
    BlockVnni<kPackedRows, kPackedCols, WT>(p, pm, m, me, n0, nb, scratch, state);
    BlockVnni<kGemmRows, 4, WT>(p, pm, m, me, nb, n1, scratch, state);
  }
}
