// One rotated RoPE pair, shared by rope.comp and the q RoPE fused into the decode GEMV's epilogue
// (matmul.comp PairedGroup), so both compute every output with the same operations in the same
// order: the angle is the f32 product pos * inv_freq, as HF forms it (precise: never contracted),
// then the Cody-Waite sin/cos of common.glsl, both scaled by the attention scale; then
// y0 = x0 c - x1 s, y1 = x1 c + x0 s. Two functions, so rope.comp keeps its statement order
// (the sin/cos before the loads of the pair). Needs common.glsl.
void RopeSinCos(int pos, float inv_freq, float attn_scale, out float s, out float c) {
  precise float angle = float(pos) * inv_freq;
  SinCos(angle, s, c);
  c *= attn_scale;
  s *= attn_scale;
}

void RopeRotate(float x0, float x1, float s, float c, out float y0, out float y1) {
  y0 = x0 * c - x1 * s;
  y1 = x1 * c + x0 * s;
}
