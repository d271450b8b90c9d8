#include "tessera/text/tokenizer.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "added_vocabulary.h"
#include "components.h"
#include "unicode.h"

namespace tessera::text {

using internal::AddedToken;
using internal::AddedVocabulary;
using internal::EncodeScratch;
using internal::NormText;
using internal::Piece;

struct Tokenizer::Impl {
  std::unique_ptr<internal::Normalizer> normalizer;
  std::unique_ptr<internal::PreTokenizer> pre_tokenizer;
  std::unique_ptr<internal::Model> model;
  std::unique_ptr<internal::PostProcessor> post_processor;
  std::unique_ptr<internal::Decoder> decoder;
  AddedVocabulary added;

  // Pre-tokenizes one plain-text piece and appends its model ids.
  Status EncodePiece(Piece piece, EncodeScratch* scratch, std::vector<int32_t>* ids) const {
    if (pre_tokenizer == nullptr) return model->Tokenize(piece.text, scratch, ids);
    return pre_tokenizer->PreTokenize(std::move(piece), scratch, [&](Piece&& p) {
      return model->Tokenize(p.text, scratch, ids);
    });
  }

  // Normalizes one segment free of raw added tokens, then cuts out normalized added tokens.
  Status EncodeSegment(std::string_view segment, bool at_start, EncodeScratch* scratch,
                       std::vector<int32_t>* ids) const {
    NormText nt{std::string(segment), true};
    if (normalizer != nullptr) TSR_RETURN_IF_ERROR(normalizer->Normalize(&nt, scratch));
    std::vector<AddedVocabulary::Split> splits;
    added.FindMatches(nt.text, /*normalized_set=*/true, &splits);
    for (const auto& s : splits) {
      if (s.id >= 0) {
        ids->push_back(s.id);
      } else if (s.end > s.start) {
        const bool first = at_start && nt.first_kept && s.start == 0;
        TSR_RETURN_IF_ERROR(
            EncodePiece(Piece{nt.text.substr(s.start, s.end - s.start), first}, scratch, ids));
      }
    }
    return OkStatus();
  }

  const std::string* Token(int32_t id) const {
    if (const AddedToken* t = added.ById(id)) return &t->decode_form;
    return model->IdToToken(id);
  }
};

namespace {

StatusOr<std::vector<AddedToken>> ParseAddedTokens(const nlohmann::json& root,
                                                   const internal::Model& model) {
  std::vector<AddedToken> out;
  auto it = root.find("added_tokens");
  if (it == root.end() || it->is_null()) return out;
  if (!it->is_array()) return InvalidArgument("added_tokens must be an array");
  for (const auto& j : *it) {
    AddedToken t;
    TSR_ASSIGN_OR_RETURN(t.content, internal::JsonString(j, "content"));
    TSR_ASSIGN_OR_RETURN(int64_t id, internal::JsonInt(j, "id", -1));
    TSR_ASSIGN_OR_RETURN(t.single_word, internal::JsonBool(j, "single_word", false));
    TSR_ASSIGN_OR_RETURN(t.lstrip, internal::JsonBool(j, "lstrip", false));
    TSR_ASSIGN_OR_RETURN(t.rstrip, internal::JsonBool(j, "rstrip", false));
    TSR_ASSIGN_OR_RETURN(t.special, internal::JsonBool(j, "special", false));
    TSR_ASSIGN_OR_RETURN(t.normalized, internal::JsonBool(j, "normalized", !t.special));
    // Like the library, a token the model already knows keeps the model's id.
    if (auto model_id = model.TokenToId(t.content)) id = *model_id;
    if (id < 0 || id > INT32_MAX) return InvalidArgument("added token without a valid id");
    t.id = static_cast<int32_t>(id);
    out.push_back(std::move(t));
  }
  return out;
}

StatusOr<std::unique_ptr<Tokenizer::Impl>> BuildImpl(const nlohmann::json& root) {
  if (!root.is_object()) return InvalidArgument("tokenizer.json must hold an object");
  auto impl = std::make_unique<Tokenizer::Impl>();
  if (!root.contains("model")) return InvalidArgument("tokenizer.json has no model");
  TSR_ASSIGN_OR_RETURN(impl->model, internal::ModelFromJson(root["model"]));
  const nlohmann::json null;
  TSR_ASSIGN_OR_RETURN(impl->normalizer,
                       internal::NormalizerFromJson(root.value("normalizer", null)));
  TSR_ASSIGN_OR_RETURN(impl->pre_tokenizer,
                       internal::PreTokenizerFromJson(root.value("pre_tokenizer", null)));
  TSR_ASSIGN_OR_RETURN(impl->post_processor,
                       internal::PostProcessorFromJson(root.value("post_processor", null)));
  TSR_ASSIGN_OR_RETURN(impl->decoder, internal::DecoderFromJson(root.value("decoder", null)));
  TSR_ASSIGN_OR_RETURN(auto added, ParseAddedTokens(root, *impl->model));
  TSR_RETURN_IF_ERROR(impl->added.Init(added, impl->normalizer.get()));
  return impl;
}

}  // namespace

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::~Tokenizer() = default;

StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromJson(std::string_view json) {
  // nlohmann reports type errors by exception; they stop here and become a Status.
  try {
    const nlohmann::json root = nlohmann::json::parse(json.begin(), json.end(), nullptr, false);
    if (root.is_discarded()) return InvalidArgument("tokenizer.json is not valid JSON");
    TSR_ASSIGN_OR_RETURN(auto impl, BuildImpl(root));
    return std::unique_ptr<Tokenizer>(new Tokenizer(std::move(impl)));
  } catch (const nlohmann::json::exception& e) {
    return InvalidArgument(std::string("malformed tokenizer.json: ") + e.what());
  }
}

StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound("cannot open tokenizer file '" + path + "'");
  std::stringstream buf;
  buf << in.rdbuf();
  auto tok = FromJson(buf.str());
  if (!tok.ok()) return tok.status().WithContext(path);
  return tok;
}

StatusOr<std::vector<int32_t>> Tokenizer::EncodeRaw(std::string_view text) const {
  if (!internal::IsValidUtf8(text)) return InvalidArgument("Encode: text is not valid UTF-8");
  EncodeScratch scratch;
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  std::vector<AddedVocabulary::Split> splits;
  impl_->added.FindMatches(text, /*normalized_set=*/false, &splits);
  for (const auto& s : splits) {
    if (s.id >= 0) {
      ids.push_back(s.id);
    } else if (s.end > s.start) {
      TSR_RETURN_IF_ERROR(impl_->EncodeSegment(text.substr(s.start, s.end - s.start), s.start == 0,
                                               &scratch, &ids));
    }
  }
  return ids;
}

StatusOr<std::vector<int32_t>> Tokenizer::Encode(std::string_view text,
                                                 bool add_special_tokens) const {
  TSR_ASSIGN_OR_RETURN(std::vector<int32_t> ids, EncodeRaw(text));
  if (!impl_->post_processor) return ids;
  TSR_ASSIGN_OR_RETURN(Encoding enc, PostProcess(ids, std::nullopt, add_special_tokens));
  return std::move(enc.ids);
}

StatusOr<Encoding> Tokenizer::EncodePair(std::string_view a, std::string_view b,
                                         bool add_special_tokens) const {
  TSR_ASSIGN_OR_RETURN(std::vector<int32_t> ids_a, EncodeRaw(a));
  TSR_ASSIGN_OR_RETURN(std::vector<int32_t> ids_b, EncodeRaw(b));
  return PostProcess(ids_a, std::span<const int32_t>(ids_b), add_special_tokens);
}

StatusOr<Encoding> Tokenizer::PostProcess(std::span<const int32_t> a,
                                          std::optional<std::span<const int32_t>> b,
                                          bool add_special_tokens) const {
  // As the library's encode_single_sequence: the first sequence has type 0, the pair type 1.
  std::vector<internal::IdSequence> seqs(b ? 2 : 1);
  seqs[0].ids.assign(a.begin(), a.end());
  seqs[0].type_ids.assign(a.size(), 0);
  if (b) {
    seqs[1].ids.assign(b->begin(), b->end());
    seqs[1].type_ids.assign(b->size(), 1);
  }
  if (impl_->post_processor)
    TSR_RETURN_IF_ERROR(impl_->post_processor->Process(&seqs, add_special_tokens));
  Encoding out;
  for (auto& s : seqs) {
    out.ids.insert(out.ids.end(), s.ids.begin(), s.ids.end());
    out.type_ids.insert(out.type_ids.end(), s.type_ids.begin(), s.type_ids.end());
  }
  return out;
}

int32_t Tokenizer::NumSpecialTokensToAdd(bool is_pair) const {
  return impl_->post_processor ? impl_->post_processor->AddedTokens(is_pair) : 0;
}

StatusOr<std::string> Tokenizer::Decode(std::span<const int32_t> ids,
                                        bool skip_special_tokens) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int32_t id : ids) {
    const std::string* tok = impl_->Token(id);
    if (tok == nullptr)
      return OutOfRange("Decode: id " + std::to_string(id) + " is not in the vocabulary");
    if (skip_special_tokens && impl_->added.IsSpecialContent(*tok)) continue;
    tokens.push_back(*tok);
  }
  std::string out;
  if (impl_->decoder) {
    TSR_RETURN_IF_ERROR(impl_->decoder->DecodeChain(&tokens));
    for (const std::string& t : tokens) out += t;
  } else {
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (i > 0) out += ' ';
      out += tokens[i];
    }
  }
  return out;
}

int32_t Tokenizer::vocab_size() const {
  return std::max(impl_->model->IdLimit(), impl_->added.IdLimit());
}

std::optional<int32_t> Tokenizer::TokenToId(std::string_view token) const {
  if (auto id = impl_->added.IdOf(token)) return id;
  return impl_->model->TokenToId(token);
}

std::optional<std::string> Tokenizer::IdToToken(int32_t id) const {
  const std::string* tok = impl_->Token(id);
  if (tok == nullptr) return std::nullopt;
  return *tok;
}

bool Tokenizer::IsSpecial(int32_t id) const {
  const std::string* tok = impl_->Token(id);
  return tok != nullptr && impl_->added.IsSpecialContent(*tok);
}

DecodeStream::DecodeStream(const Tokenizer& tokenizer, bool skip_special_tokens)
    : tokenizer_(&tokenizer), skip_special_tokens_(skip_special_tokens) {}

StatusOr<std::string> DecodeStream::Step(int32_t id) {
  ids_.push_back(id);
  TSR_ASSIGN_OR_RETURN(std::string text, tokenizer_->Decode(ids_, skip_special_tokens_));
  constexpr std::string_view kReplacement = "\xEF\xBF\xBD";
  const bool held =
      text.size() >= kReplacement.size() &&
      text.compare(text.size() - kReplacement.size(), kReplacement.size(), kReplacement) == 0;
  if (text.size() <= prefix_.size() || held) return std::string();
  if (text.compare(0, prefix_.size(), prefix_) != 0) {
    return FailedPrecondition("DecodeStream: the decoder rewrote already emitted text");
  }
  std::string fresh = text.substr(prefix_.size());
  // Slide the window: the ids just emitted become the context for the next step.
  const size_t new_prefix_index = ids_.size() - prefix_index_;
  ids_.erase(ids_.begin(), ids_.begin() + static_cast<std::ptrdiff_t>(prefix_index_));
  TSR_ASSIGN_OR_RETURN(prefix_, tokenizer_->Decode(ids_, skip_special_tokens_));
  prefix_index_ = new_prefix_index;
  return fresh;
}

StatusOr<std::string> DecodeStream::Flush() {
  TSR_ASSIGN_OR_RETURN(std::string text, tokenizer_->Decode(ids_, skip_special_tokens_));
  std::string rest;
  if (text.size() > prefix_.size()) {
    if (text.compare(0, prefix_.size(), prefix_) != 0) {
      return FailedPrecondition("DecodeStream: the decoder rewrote already emitted text");
    }
    rest = text.substr(prefix_.size());
  }
  ids_.clear();
  prefix_.clear();
  prefix_index_ = 0;
  return rest;
}

}  // namespace tessera::text
