// The RMS_NORM and ARGMAX row loops of rows.comp for one counter type IDX: rows.comp includes
// this file twice, IDX = int where the row is shorter than 2^30 (32-bit counters; vk20-rope) and
// IDX = int64_t beyond, so both paths run the same loads and operations in the same order (the
// same bits). Addresses are stepped along the row, not recomputed from the counter.

// RMS_NORM of the n-element row at x into o: the sum of squares in this invocation's element
// order, BlockSum, r = 1 / sqrt(ss / n + eps), then y = (x r) (weight + woff).
void RmsNormRow(Params P, uint64_t x, uint64_t o, int tid, int64_t n) {
  const IDX nn = IDX(n);
  const int64_t sx = P.sx, so = P.so;
  const uint64_t xs = uint64_t(256l * sx);
  float ss = 0.0;
  uint64_t a = x + uint64_t(int64_t(tid) * sx);
  for (IDX i = tid; i < nn; i += 256, a += xs) {
    const float v = LoadF32(a);
    ss = fma(v, v, ss);
  }
  ss = BlockSum(ss);
  const float r = 1.0 / sqrt(ss / float(n) + P.eps);
  const uint64_t w = P.weight;
  const float woff = P.woff;
  a = x + uint64_t(int64_t(tid) * sx);
  uint64_t b = o + uint64_t(int64_t(tid) * so);
  const uint64_t os = uint64_t(256l * so);
  if (w != 0ul) {
    for (IDX i = tid; i < nn; i += 256, a += xs, b += os)
      StoreF32(b, (LoadF32(a) * r) * (LoadF32(w + uint64_t(i) * 4ul) + woff));
  } else {
    for (IDX i = tid; i < nn; i += 256, a += xs, b += os) StoreF32(b, LoadF32(a) * r);
  }
}

// ARGMAX's scan of this invocation's elements: the first index of its largest value (NaN and
// -inf never replace the start bv = -inf, bi = 0x7fffffff).
void ArgmaxScan(Params P, uint64_t x, int tid, int64_t n, inout float bv, inout int bi) {
  const IDX nn = IDX(n);
  const uint64_t xs = uint64_t(256l * P.sx);
  uint64_t a = x + uint64_t(int64_t(tid) * P.sx);
  for (IDX i = tid; i < nn; i += 256, a += xs) {
    const float v = LoadF32(a);
    if (v > bv) bv = v, bi = int(i);
  }
}
