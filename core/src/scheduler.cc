#include "tessera/core/scheduler.h"

#include <algorithm>
#include <set>

namespace tessera {

int32_t Schedule::num_copies() const {
  return static_cast<int32_t>(std::count_if(
      steps.begin(), steps.end(), [](const Step& s) { return s.kind == Step::Kind::kCopy; }));
}

tsr_graph_view AbiGraph::view() const {
  tsr_graph_view v{};
  v.struct_size = sizeof(v);
  v.n_tensors = static_cast<int32_t>(tensors.size());
  v.tensors = tensors.data();
  v.n_nodes = static_cast<int32_t>(nodes.size());
  v.nodes = nodes.data();
  return v;
}

AbiGraph MakeAbiGraph(const Graph& graph) {
  AbiGraph g;
  g.tensors.reserve(graph.num_tensors());
  for (const TensorDesc& t : graph.tensors()) g.tensors.push_back(ToAbiTensor(t));
  g.nodes.reserve(graph.num_nodes());
  for (const Node& n : graph.nodes()) g.nodes.push_back(ToAbiNode(n));
  return g;
}

namespace {

constexpr int32_t kUnassigned = -1;

// Returns the device a node touching a state tensor is pinned to, or -1.
int32_t PinnedDevice(const Graph& graph, const Node& node, const ScheduleOptions& opt) {
  if (opt.state_device.empty()) return -1;
  auto pin_of = [&](TensorId t) {
    TensorId r = graph.Root(t);
    return graph.tensor(r).kind == TensorKind::kState ? opt.state_device[r] : -1;
  };
  int32_t pin = pin_of(node.output);
  for (TensorId in : node.inputs)
    if (in != kNoTensor && pin < 0) pin = pin_of(in);
  return pin;
}

// `pinned[n]`: the device node n must run on because it touches state there, or -1.
Status AssignCompiled(Device* dev, int32_t d, const tsr_graph_view& view, const Graph& graph,
                      const std::vector<int32_t>& pinned, std::vector<int32_t>* node_device,
                      std::vector<int32_t>* group) {
  if (!dev->plugin().api().claim) return OkStatus();
  std::vector<int32_t> claimed(graph.num_nodes(), -1);
  tsr_claim_result res{};
  res.struct_size = sizeof(res);
  res.group_of_node = claimed.data();
  tsr_error err{};
  err.struct_size = sizeof(err);
  tsr_status st = dev->plugin().api().claim(dev->handle(), &view, &res, &err);
  if (st == TSR_ERR_UNIMPLEMENTED || st == TSR_ERR_UNSUPPORTED) return OkStatus();
  TSR_RETURN_IF_ERROR(dev->Check(st, err));
  for (int32_t n = 0; n < graph.num_nodes(); ++n) {
    if (claimed[n] < 0 || (*node_device)[n] != kUnassigned) continue;
    if (pinned[n] >= 0 && pinned[n] != d) continue;  // its state lives elsewhere
    // Serialized subgraphs are contiguous: nodes reading or writing strided views stay out.
    const Node& node = graph.nodes()[n];
    bool plain = graph.tensor(node.output).IsContiguous();
    for (TensorId in : node.inputs)
      if (in != kNoTensor && !graph.tensor(in).IsContiguous()) plain = false;
    if (!plain) continue;
    (*node_device)[n] = d;
    (*group)[n] = claimed[n];
  }
  return OkStatus();
}

}  // namespace

StatusOr<Schedule> ScheduleGraph(const Graph& graph, std::span<Device* const> devices,
                                 const ScheduleOptions& options) {
  if (devices.empty()) return FailedPrecondition("no device to run the graph on");
  const int32_t n_nodes = graph.num_nodes();
  AbiGraph abi = MakeAbiGraph(graph);
  tsr_graph_view view = abi.view();
  Schedule s;
  s.node_device.assign(n_nodes, kUnassigned);
  std::vector<int32_t> group(n_nodes, -1);

  int32_t cpu = -1;
  for (size_t d = 0; d < devices.size(); ++d)
    if (cpu < 0 && devices[d]->props().kind == TSR_DEVICE_CPU) cpu = static_cast<int32_t>(d);

  // Nodes pinned to a state's device go there first. A compile-style device (an NPU holding the
  // KV pool) must claim its pinned nodes itself: they wait for its claim below, and no other
  // device may take them.
  std::vector<int32_t> pinned(n_nodes, -1);
  for (int32_t n = 0; n < n_nodes; ++n) {
    int32_t pin = PinnedDevice(graph, graph.nodes()[n], options);
    if (pin < 0) continue;
    pinned[n] = pin;
    if (devices[pin]->compile_style()) continue;
    TSR_ASSIGN_OR_RETURN(bool ok, devices[pin]->SupportsOp(view, n));
    if (!ok)
      return Unsupported(std::string("node ") + std::to_string(n) + " (" +
                         OpName(graph.nodes()[n].op) + ") touches state on " +
                         devices[pin]->label() + ", which cannot run it");
    s.node_device[n] = pin;
  }
  for (size_t d = 0; d < devices.size(); ++d) {
    Device* dev = devices[d];
    if (dev->compile_style()) {
      TSR_RETURN_IF_ERROR(AssignCompiled(dev, static_cast<int32_t>(d), view, graph, pinned,
                                         &s.node_device, &group));
      continue;
    }
    for (int32_t n = 0; n < n_nodes; ++n) {
      if (s.node_device[n] != kUnassigned || pinned[n] >= 0) continue;
      TSR_ASSIGN_OR_RETURN(bool ok, dev->SupportsOp(view, n));
      if (ok) s.node_device[n] = static_cast<int32_t>(d);
    }
  }
  for (int32_t n = 0; n < n_nodes; ++n) {
    if (s.node_device[n] != kUnassigned) continue;
    if (pinned[n] >= 0)
      return Unsupported(std::string("node ") + std::to_string(n) + " (" +
                         OpName(graph.nodes()[n].op) + ") touches state on " +
                         devices[pinned[n]]->label() + ", which did not claim it");
    std::string what =
        std::string("node ") + std::to_string(n) + " (" + OpName(graph.nodes()[n].op) + ")";
    if (cpu < 0) return Unsupported(what + ": no device supports it and no CPU device is loaded");
    return Unsupported(what + ": not supported by any device, the CPU fallback included");
  }

  // Homes: producers own intermediates; leaves live with their first reader.
  s.home.assign(graph.num_tensors(), -1);
  for (int32_t n = 0; n < n_nodes; ++n) {
    const Node& node = graph.nodes()[n];
    TensorId out = graph.Root(node.output);
    if (s.home[out] < 0) s.home[out] = s.node_device[n];
    for (TensorId in : node.inputs) {
      if (in == kNoTensor) continue;
      TensorId r = graph.Root(in);
      if (s.home[r] < 0 && graph.tensor(r).kind != TensorKind::kWeight)
        s.home[r] = s.node_device[n];
    }
  }
  for (TensorId t = 0; t < graph.num_tensors(); ++t)
    if (!options.state_device.empty() && graph.tensor(t).kind == TensorKind::kState)
      s.home[t] = options.state_device[t];

  // Steps: maximal runs of consecutive nodes on one device (and one compiled group), each
  // preceded by the copies its inputs need.
  std::set<std::pair<TensorId, int32_t>> mirrored;
  for (int32_t n = 0; n < n_nodes;) {
    int32_t d = s.node_device[n];
    bool compiled = devices[d]->compile_style();
    Step step;
    step.kind = compiled ? Step::Kind::kCompiled : Step::Kind::kKernels;
    step.device = d;
    int32_t m = n;
    while (m < n_nodes && s.node_device[m] == d && (!compiled || group[m] == group[n]))
      step.nodes.push_back(m++);
    for (int32_t k : step.nodes) {
      for (TensorId in : graph.nodes()[k].inputs) {
        if (in == kNoTensor) continue;
        TensorId r = graph.Root(in);
        if (graph.tensor(r).kind == TensorKind::kWeight || s.home[r] == d) continue;
        if (!mirrored.insert({r, d}).second) continue;
        if (graph.tensor(r).kind == TensorKind::kState)
          return Internal("state tensor '" + graph.tensor(r).name + "' read off its device");
        Step copy;
        copy.kind = Step::Kind::kCopy;
        copy.device = d;
        copy.tensor = r;
        copy.from_device = s.home[r];
        s.steps.push_back(std::move(copy));
      }
    }
    s.steps.push_back(std::move(step));
    n = m;
  }
  return s;
}

}  // namespace tessera
