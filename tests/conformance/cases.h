// The catalogue of conformance cases: for every tsr_op, inputs with odd shapes, strided views,
// every weight dtype, attention variants. Data is built lazily (only when a case runs).
#ifndef TESSERA_TESTS_CONFORMANCE_CASES_H_
#define TESSERA_TESTS_CONFORMANCE_CASES_H_

#include <deque>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "harness.h"
#include "reference.h"

namespace tessera::conformance {

// The inputs and params of one case. `storage` owns the tensors `spec.inputs` points at (a deque
// keeps their addresses stable).
struct CaseData {
  std::deque<Tensor> storage;
  NodeSpec spec;
  std::mt19937 rng;  // seeded from the case name: every run sees the same data

  // Appends an input; returns it.
  const Tensor& Add(Tensor t, Layout layout = Layout::kContiguous);
  void AddAbsent();  // an optional input left out (-1)
  // The same node, as the reference sees it.
  RefNode ToRefNode() const;
};

struct OpCase {
  std::string name;  // unique, [A-Za-z0-9_] only: "MATMUL_q4_M3_K4128_N17_bias"
  tsr_op op = TSR_OP_NONE;
  // true: the ABI names this op/dtype/layout, so the "cpu" backend must support it. false: an
  // extension (non-contiguous input where the ABI does not promise strides, a cache dtype the
  // ABI does not name): any backend may decline it, but if it accepts it must be right.
  bool required = true;
  std::function<void(CaseData*)> build;
};

// Every case, in a stable order. Built once; thread-safe.
const std::vector<OpCase>& AllCases();

}  // namespace tessera::conformance

#endif  // TESSERA_TESTS_CONFORMANCE_CASES_H_
