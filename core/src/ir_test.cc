#include "tessera/core/ir.h"

#include <gtest/gtest.h>

namespace tessera {
namespace {

TEST(Ir, ContiguousStridesAndQuantizedRows) {
  EXPECT_EQ(ContiguousStrides(DType::kF32, {2, 3, 4}), (std::vector<int64_t>{48, 16, 4}));
  EXPECT_EQ(ContiguousStrides(DType::kBF16, {5, 7}), (std::vector<int64_t>{14, 2}));
  // q8: 64 values a row = 2 blocks of 34 bytes.
  EXPECT_EQ(ContiguousStrides(DType::kQ8, {3, 64}), (std::vector<int64_t>{68, 0}));
  EXPECT_EQ(RowBytes(DType::kQ4, 64), 36);
  TensorDesc d{"w", DType::kQ4, {10, 64}};
  EXPECT_EQ(d.ContiguousBytes(), 360);
}

TEST(Ir, BuildsAValidDecoderBlockFragment) {
  Graph g;
  TensorId x = g.AddInput("x", DType::kF32, {7, 64});
  TensorId pos = g.AddInput("pos", DType::kI32, {7});
  TensorId inv = g.AddInput("inv_freq", DType::kF32, {8});
  TensorId wn = g.AddWeight("norm", DType::kBF16, {64});
  TensorId wq = g.AddWeight("wq", DType::kQ8, {64, 64});
  TensorId h = g.AddNode(TSR_OP_RMS_NORM, {x, wn}, DType::kF32, {7, 64}, OpParams{{}, {1e-6f}});
  TensorId q = g.AddNode(TSR_OP_MATMUL, {h, wq}, DType::kF32, {7, 64});
  TensorId q3 = g.Reshape(q, {7, 4, 16});
  OpParams rope;
  rope.i[1] = 16;
  rope.f[0] = 1.f;
  TensorId r = g.AddNode(TSR_OP_ROPE, {q3, pos, inv}, DType::kF32, {7, 4, 16}, rope);
  g.MarkOutput(r);
  EXPECT_TRUE(g.Validate().ok()) << g.Validate().ToString();
  EXPECT_EQ(g.tensor(q3).kind, TensorKind::kView);
  EXPECT_EQ(g.Root(q3), q);
}

TEST(Ir, RejectsShapeMismatchesWithTheNodeNamed) {
  Graph g;
  TensorId x = g.AddInput("x", DType::kF32, {3, 8});
  TensorId w = g.AddWeight("w", DType::kF32, {4, 9});
  g.AddNode(TSR_OP_MATMUL, {x, w}, DType::kF32, {3, 4});
  Status s = g.Validate();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("node 0 (matmul)"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("inner dims differ"), std::string::npos) << s.message();
}

TEST(Ir, ArgmaxTakesF32RowsAndGivesOneI32PerRow) {
  Graph g;
  TensorId x = g.AddInput("x", DType::kF32, {2, 3, 50});
  g.MarkOutput(g.AddNode(TSR_OP_ARGMAX, {x}, DType::kI32, {2, 3, 1}));
  EXPECT_TRUE(g.Validate().ok()) << g.Validate().ToString();
  EXPECT_STREQ(OpName(TSR_OP_ARGMAX), "argmax");

  auto error = [](DType in, Shape in_shape, DType out, Shape out_shape) {
    Graph b;
    TensorId t = b.AddInput("x", in, std::move(in_shape));
    b.AddNode(TSR_OP_ARGMAX, {t}, out, std::move(out_shape));
    return b.Validate().message();
  };
  EXPECT_NE(error(DType::kF32, {4, 8}, DType::kF32, {4, 1}).find("output must be i32"),
            std::string::npos);
  EXPECT_NE(error(DType::kBF16, {4, 8}, DType::kI32, {4, 1}).find("input 0 must be f32"),
            std::string::npos);
  EXPECT_NE(error(DType::kF32, {4, 8}, DType::kI32, {4}).find("should be [4, 1]"),
            std::string::npos);
  EXPECT_NE(error(DType::kF32, {4, 0}, DType::kI32, {4, 1}).find("rows of 1.."), std::string::npos);
}

TEST(Ir, RejectsBadViewsAndDuplicateLeafNames) {
  Graph g;
  TensorId x = g.AddInput("x", DType::kF32, {4, 6});
  g.Reshape(x, {5, 5});
  EXPECT_FALSE(g.Validate().ok());
  Graph g2;
  g2.AddInput("x", DType::kF32, {1});
  g2.AddWeight("x", DType::kF32, {1});
  EXPECT_NE(g2.Validate().message().find("two leaf tensors are named 'x'"), std::string::npos);
  Graph g3;
  g3.AddWeight("q", DType::kQ4, {4, 30});
  EXPECT_NE(g3.Validate().message().find("multiple of 32"), std::string::npos);
}

TEST(Ir, PermuteAndSliceMakeStridedViews) {
  Graph g;
  TensorId x = g.AddInput("x", DType::kF32, {2, 3, 4});
  TensorId p = g.Permute(x, {2, 0, 1});
  EXPECT_EQ(g.tensor(p).shape, (Shape{4, 2, 3}));
  EXPECT_EQ(g.tensor(p).strides, (std::vector<int64_t>{4, 48, 16}));
  EXPECT_FALSE(g.tensor(p).IsContiguous());
  TensorId s = g.Slice(x, 1, 1, 2);
  EXPECT_EQ(g.tensor(s).view_offset, 16);
  EXPECT_EQ(g.tensor(s).shape, (Shape{2, 2, 4}));
  TensorId y = g.AddNode(TSR_OP_SILU, {p}, DType::kF32, {4, 2, 3});
  g.MarkOutput(y);
  EXPECT_TRUE(g.Validate().ok());
}

TEST(Ir, IrCarriesPagedAttentionEncoderAttentionAndConvolutions) {
  Graph g;
  // Two sequences of 3 and 1 new tokens over a paged cache of 8 blocks of 16 slots.
  TensorId q = g.AddInput("q", DType::kF32, {4, 8, 64});
  TensorId k = g.AddInput("k", DType::kF32, {4, 2, 64});
  TensorId kc = g.AddState("k_cache", DType::kF32, {8, 16, 2, 64});
  TensorId vc = g.AddState("v_cache", DType::kF32, {8, 16, 2, 64});
  TensorId slots = g.AddInput("slots", DType::kI32, {4});
  TensorId table = g.AddInput("block_table", DType::kI32, {2, 4});
  TensorId lens = g.AddInput("kv_lens", DType::kI32, {2});
  TensorId cu = g.AddInput("cu_q", DType::kI32, {3});
  TensorId kw = g.AddInPlaceNode(TSR_OP_KV_WRITE, {kc, k, slots}, kc);
  OpParams p;
  p.f[0] = 0.125f;
  TensorId o =
      g.AddNode(TSR_OP_PAGED_ATTENTION, {q, kw, vc, table, lens, cu}, DType::kF32, {4, 8, 64}, p);
  g.MarkOutput(o);
  // Encoder-style dense attention and a conv front-end.
  TensorId cuk = g.AddInput("cu_k", DType::kI32, {3});
  TensorId v = g.AddInput("v", DType::kF32, {4, 2, 64});
  g.AddNode(TSR_OP_ATTENTION, {q, k, v, cu, cuk}, DType::kF32, {4, 8, 64}, p);
  TensorId audio = g.AddInput("mel", DType::kF32, {1, 80, 300});
  TensorId cw = g.AddWeight("conv1", DType::kF16, {384, 80, 3});
  OpParams cp;
  cp.i = {1, 1, 1, 1};
  g.AddNode(TSR_OP_CONV1D, {audio, cw}, DType::kF32, {1, 384, 300}, cp);
  TensorId img = g.AddInput("img", DType::kF32, {1, 3, 224, 224});
  TensorId pw = g.AddWeight("patch", DType::kF32, {768, 3, 16, 16});
  OpParams pp;
  pp.i = {16, 16, 0, 0, 1, 1, 1};
  g.AddNode(TSR_OP_CONV2D, {img, pw}, DType::kF32, {1, 768, 14, 14}, pp);
  EXPECT_TRUE(g.Validate().ok()) << g.Validate().ToString();
}

}  // namespace
}  // namespace tessera
