// The int8 GEMM's 3 x 4 register tiles: kernels_qmatmul.cc compiled a second time with
// TSR_QGEMM_TU, which defines QMatmulColumns here (GemmPanels<3, 4> for the GEMM, the decode
// GEMV over operand-packed rows with a partial last superstep (GemvPartialOperands), else
// kernels_qmatmul.cc's QMatmulColumnsMain: the GEMV, the 1 x 8 tiles, the portable path) in place
// of that unit's public functions. Why a translation unit of its own: GCC 12's inliner decides per
// unit, and with the 3 x 4 instantiations beside the decode GEMV tiles it inlined those
// differently (the row-major Q4 GEMV ran ~8% slower: matmul_lab --shape llama-3.2-1b --rows 1
// --dtype q4 without --repack); apart, every function of kernels_qmatmul.cc compiles to the
// same instructions as before. The helpers this unit does not use are compiled here unused,
// hence the pragma.
#pragma GCC diagnostic ignored "-Wunused-function"
#define TSR_QGEMM_TU 1
#include "backends/cpu/kernels_qmatmul.cc"  // NOLINT(build/include): the second compilation
