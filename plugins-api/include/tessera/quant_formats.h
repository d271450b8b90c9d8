/*
 * Block-quantized weight formats shared by every backend. Byte-exact: a weight quantized by the
 * core at load time is handed to any plugin as these bytes.
 *
 * Both formats split the innermost dimension of a tensor into blocks of TSR_QBLOCK = 32
 * consecutive values (the innermost length must be a multiple of 32). A row of K values is
 * K/32 blocks laid out back to back, with no padding between blocks or rows. Scales are IEEE
 * binary16 stored little-endian. Blocks are byte-aligned only (sizes 34 and 18): readers must not
 * assume more alignment.
 *
 * TSR_DTYPE_Q8_B32 (34 bytes a block)
 *   bytes 0-1   d      scale, binary16
 *   bytes 2-33  q[32]  int8, two's complement
 *   value[i] = d * q[i]
 *   Quantizing (reference): amax = max |x[i]|; d = amax / 127 (f32); q[i] = round_half_away(x[i] /
 * d) (0 when d == 0), clamped to [-127, 127]; the stored scale is d rounded to binary16
 *   (round-to-nearest-even).
 *
 * TSR_DTYPE_Q4_B32 (18 bytes a block)
 *   bytes 0-1   d       scale, binary16
 *   bytes 2-17  qs[16]  packed nibbles: value i < 16 is the LOW nibble of qs[i], value i >= 16 the
 *                       HIGH nibble of qs[i - 16]
 *   value[i] = d * (nibble[i] - 8)
 *   Quantizing (reference): m = the x[i] with the largest |x[i]| (sign kept); d = m / -8 (f32);
 *   nibble[i] = clamp(trunc(x[i] / d + 8.5), 0, 15) (8 when d == 0); stored scale as above.
 */
#ifndef TESSERA_QUANT_FORMATS_H_
#define TESSERA_QUANT_FORMATS_H_

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TSR_QBLOCK 32

typedef struct tsr_block_q8 {
  uint16_t d;
  int8_t q[TSR_QBLOCK];
} tsr_block_q8;

typedef struct tsr_block_q4 {
  uint16_t d;
  uint8_t qs[TSR_QBLOCK / 2];
} tsr_block_q4;

#define TSR_BLOCK_Q8_BYTES 34
#define TSR_BLOCK_Q4_BYTES 18

#ifdef __cplusplus
static_assert(sizeof(tsr_block_q8) == TSR_BLOCK_Q8_BYTES, "q8 block layout");
static_assert(sizeof(tsr_block_q4) == TSR_BLOCK_Q4_BYTES, "q4 block layout");
#else
_Static_assert(sizeof(tsr_block_q8) == TSR_BLOCK_Q8_BYTES, "q8 block layout");
_Static_assert(sizeof(tsr_block_q4) == TSR_BLOCK_Q4_BYTES, "q4 block layout");
#endif

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* TESSERA_QUANT_FORMATS_H_ */
