// Post-processors: tokenizers/src/processors/* semantics on ids and type ids, for one sequence
// or a pair.
#include <nlohmann/json.hpp>

#include "components.h"

namespace tessera::text::internal {
namespace {

void Prepend(IdSequence* s, int32_t id, int32_t type_id) {
  s->ids.insert(s->ids.begin(), id);
  s->type_ids.insert(s->type_ids.begin(), type_id);
}
void Append(IdSequence* s, int32_t id, int32_t type_id) {
  s->ids.push_back(id);
  s->type_ids.push_back(type_id);
}

// ByteLevel only trims offsets, which ids do not carry.
class NoopProcessor final : public PostProcessor {
 public:
  Status Process(std::vector<IdSequence>*, bool) const override { return OkStatus(); }
  int32_t AddedTokens(bool) const override { return 0; }
};

// [CLS] A [SEP] (type 0) and B [SEP] (type 1); the sequences keep their preset type ids.
class BertProcessor final : public PostProcessor {
 public:
  BertProcessor(int32_t cls, int32_t sep) : cls_(cls), sep_(sep) {}
  Status Process(std::vector<IdSequence>* seqs, bool add_special_tokens) const override {
    if (!add_special_tokens) return OkStatus();
    Prepend(&(*seqs)[0], cls_, 0);
    Append(&(*seqs)[0], sep_, 0);
    if (seqs->size() > 1) Append(&(*seqs)[1], sep_, 1);
    return OkStatus();
  }
  int32_t AddedTokens(bool is_pair) const override { return is_pair ? 3 : 2; }

 private:
  int32_t cls_, sep_;
};

// <s> A </s> and </s> B </s>; every type id is 0 (RoBERTa has one token type).
class RobertaProcessor final : public PostProcessor {
 public:
  RobertaProcessor(int32_t cls, int32_t sep) : cls_(cls), sep_(sep) {}
  Status Process(std::vector<IdSequence>* seqs, bool add_special_tokens) const override {
    for (IdSequence& s : *seqs) s.type_ids.assign(s.ids.size(), 0);
    if (!add_special_tokens) return OkStatus();
    Prepend(&(*seqs)[0], cls_, 0);
    Append(&(*seqs)[0], sep_, 0);
    if (seqs->size() > 1) {
      Prepend(&(*seqs)[1], sep_, 0);
      Append(&(*seqs)[1], sep_, 0);
    }
    return OkStatus();
  }
  int32_t AddedTokens(bool is_pair) const override { return is_pair ? 4 : 2; }

 private:
  int32_t cls_, sep_;
};

// One piece of a template: a sequence (0 = $A, 1 = $B) or special ids, with its type id.
struct TemplatePiece {
  int32_t sequence = -1;     // -1 for special tokens
  std::vector<int32_t> ids;  // special tokens
  int32_t type_id = 0;
};

// Sequences take the template's type id even without special tokens, as the library does.
class TemplateProcessor final : public PostProcessor {
 public:
  TemplateProcessor(std::vector<TemplatePiece> single,
                    std::optional<std::vector<TemplatePiece>> pair)
      : single_(std::move(single)), pair_(std::move(pair)) {}
  Status Process(std::vector<IdSequence>* seqs, bool add_special_tokens) const override {
    const bool is_pair = seqs->size() > 1;
    if (is_pair && !pair_) return InvalidArgument("the tokenizer's template has no pair form");
    IdSequence out;
    for (const TemplatePiece& p : is_pair ? *pair_ : single_) {
      if (p.sequence >= static_cast<int32_t>(seqs->size())) {
        return InvalidArgument("the tokenizer's template names $B for a single sequence");
      } else if (p.sequence >= 0) {
        const IdSequence& s = (*seqs)[p.sequence];
        out.ids.insert(out.ids.end(), s.ids.begin(), s.ids.end());
        out.type_ids.insert(out.type_ids.end(), s.ids.size(), p.type_id);
      } else if (add_special_tokens) {
        out.ids.insert(out.ids.end(), p.ids.begin(), p.ids.end());
        out.type_ids.insert(out.type_ids.end(), p.ids.size(), p.type_id);
      }
    }
    seqs->assign(1, std::move(out));
    return OkStatus();
  }
  int32_t AddedTokens(bool is_pair) const override {
    int32_t n = 0;
    if (is_pair && !pair_) return 0;
    for (const TemplatePiece& p : is_pair ? *pair_ : single_)
      if (p.sequence < 0) n += static_cast<int32_t>(p.ids.size());
    return n;
  }

 private:
  std::vector<TemplatePiece> single_;
  std::optional<std::vector<TemplatePiece>> pair_;
};

class SequenceProcessor final : public PostProcessor {
 public:
  explicit SequenceProcessor(std::vector<std::unique_ptr<PostProcessor>> parts)
      : parts_(std::move(parts)) {}
  Status Process(std::vector<IdSequence>* seqs, bool add_special_tokens) const override {
    for (const auto& p : parts_) TSR_RETURN_IF_ERROR(p->Process(seqs, add_special_tokens));
    return OkStatus();
  }
  int32_t AddedTokens(bool is_pair) const override {
    int32_t n = 0;
    for (const auto& p : parts_) n += p->AddedTokens(is_pair);
    return n;
  }

 private:
  std::vector<std::unique_ptr<PostProcessor>> parts_;
};

// Reads ["token", id].
StatusOr<int32_t> TokenIdPair(const nlohmann::json& j, std::string_view key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_array() || it->size() != 2 || !(*it)[1].is_number_integer()) {
    return InvalidArgument("expected [token, id] for '" + std::string(key) + "'");
  }
  return (*it)[1].get<int32_t>();
}

StatusOr<std::vector<TemplatePiece>> TemplatePieces(const nlohmann::json& pieces,
                                                    const nlohmann::json& specials) {
  if (!pieces.is_array()) return InvalidArgument("template must be an array of pieces");
  std::vector<TemplatePiece> out;
  for (const auto& piece : pieces) {
    TemplatePiece p;
    if (piece.contains("Sequence")) {
      const auto& seq = piece["Sequence"];
      const std::string id = seq.value("id", "A");
      if (id != "A" && id != "B") return InvalidArgument("bad template sequence id '" + id + "'");
      p.sequence = id == "A" ? 0 : 1;
      p.type_id = seq.value("type_id", 0);
      out.push_back(std::move(p));
      continue;
    }
    if (!piece.contains("SpecialToken") || !piece["SpecialToken"].contains("id")) {
      return InvalidArgument("bad template piece " + piece.dump());
    }
    const std::string name = piece["SpecialToken"]["id"].get<std::string>();
    if (!specials.contains(name) || !specials[name].contains("ids")) {
      return InvalidArgument("template uses special token '" + name + "' without ids");
    }
    for (const auto& id : specials[name]["ids"]) p.ids.push_back(id.get<int32_t>());
    p.type_id = piece["SpecialToken"].value("type_id", 0);
    out.push_back(std::move(p));
  }
  return out;
}

StatusOr<std::unique_ptr<PostProcessor>> TemplateFromJson(const nlohmann::json& j) {
  auto single = j.find("single");
  if (single == j.end() || !single->is_array()) {
    return InvalidArgument("TemplateProcessing without a 'single' template");
  }
  const nlohmann::json specials = j.value("special_tokens", nlohmann::json::object());
  TSR_ASSIGN_OR_RETURN(auto single_pieces, TemplatePieces(*single, specials));
  std::optional<std::vector<TemplatePiece>> pair_pieces;
  auto pair = j.find("pair");
  if (pair != j.end() && !pair->is_null()) {
    TSR_ASSIGN_OR_RETURN(pair_pieces, TemplatePieces(*pair, specials));
  }
  return std::unique_ptr<PostProcessor>(
      new TemplateProcessor(std::move(single_pieces), std::move(pair_pieces)));
}

}  // namespace

StatusOr<std::unique_ptr<PostProcessor>> PostProcessorFromJson(const nlohmann::json& j) {
  if (j.is_null()) return std::unique_ptr<PostProcessor>();
  if (!j.is_object()) return InvalidArgument("post_processor must be an object");
  const std::string type = JsonType(j);
  if (type == "ByteLevel") return std::unique_ptr<PostProcessor>(new NoopProcessor());
  if (type == "TemplateProcessing") return TemplateFromJson(j);
  if (type == "BertProcessing" || type == "RobertaProcessing") {
    TSR_ASSIGN_OR_RETURN(int32_t cls, TokenIdPair(j, "cls"));
    TSR_ASSIGN_OR_RETURN(int32_t sep, TokenIdPair(j, "sep"));
    if (type == "BertProcessing")
      return std::unique_ptr<PostProcessor>(new BertProcessor(cls, sep));
    return std::unique_ptr<PostProcessor>(new RobertaProcessor(cls, sep));
  }
  if (type == "Sequence") {
    auto it = j.find("processors");
    if (it == j.end() || !it->is_array()) return InvalidArgument("Sequence without processors");
    std::vector<std::unique_ptr<PostProcessor>> parts;
    for (const auto& sub : *it) {
      TSR_ASSIGN_OR_RETURN(auto part, PostProcessorFromJson(sub));
      if (part) parts.push_back(std::move(part));
    }
    return std::unique_ptr<PostProcessor>(new SequenceProcessor(std::move(parts)));
  }
  return Unimplemented("post_processor type '" + type + "' is not supported");
}

}  // namespace tessera::text::internal
