// StopMatcher: stop strings over a detokenized stream. See sampler.h for the contract.
//
// Invariant: pending_ holds the shortest tail of the stream that could still grow into a stop
// string (plus an unfinished UTF-8 sequence). Every match that starts inside pending_ is found on
// a later Push, and no match can start in text already emitted, because emitted text is never
// the start of a stop that runs past the end of the stream seen so far.
#include <algorithm>
#include <string>
#include <utility>

#include "tessera/text/sampler.h"

namespace tessera::text {
namespace {

// Bytes at the end of s that begin a UTF-8 sequence the stream has not finished yet. Holding
// them back keeps a client from ever receiving half a character.
size_t IncompleteUtf8Tail(std::string_view s) {
  const size_t look = std::min<size_t>(3, s.size());
  for (size_t k = 1; k <= look; ++k) {
    const auto c = static_cast<unsigned char>(s[s.size() - k]);
    if ((c & 0xC0) == 0x80) continue;  // continuation byte: keep looking for the lead
    const size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    return need > k ? k : 0;
  }
  return 0;  // a complete 4-byte sequence, or bytes that are not UTF-8: pass them through
}

}  // namespace

StopMatcher::StopMatcher(std::vector<std::string> stops) {
  for (size_t i = 0; i < stops.size(); ++i) {
    if (stops[i].empty()) continue;  // an empty stop would match everywhere
    stops_.push_back(std::move(stops[i]));
    stop_ids_.push_back(static_cast<int32_t>(i));
  }
}

// Longest suffix of pending_ that is a proper prefix of some stop, or an unfinished UTF-8 tail.
size_t StopMatcher::HoldBack() const {
  const std::string_view text = pending_;
  size_t hold = IncompleteUtf8Tail(text);
  for (const std::string& stop : stops_) {
    const size_t longest = std::min(stop.size() - 1, text.size());
    for (size_t len = longest; len > hold; --len) {
      if (text.substr(text.size() - len) == std::string_view(stop).substr(0, len)) {
        hold = len;
        break;
      }
    }
  }
  return hold;
}

StopMatcher::Result StopMatcher::Push(std::string_view new_text) {
  if (stopped_index_ >= 0) return {"", true, stopped_index_};
  pending_.append(new_text);

  // The earliest complete match wins; a stop that starts later loses even if listed first.
  size_t best_pos = std::string::npos;
  size_t best = 0;
  for (size_t k = 0; k < stops_.size(); ++k) {
    const size_t pos = pending_.find(stops_[k]);
    if (pos < best_pos) {
      best_pos = pos;
      best = k;
    }
  }
  if (best_pos != std::string::npos) {
    stopped_index_ = stop_ids_[best];
    Result r{pending_.substr(0, best_pos), true, stopped_index_};
    pending_.clear();
    return r;
  }

  const size_t keep = HoldBack();
  Result r{pending_.substr(0, pending_.size() - keep), false, -1};
  pending_.erase(0, pending_.size() - keep);
  return r;
}

std::string StopMatcher::Flush() {
  std::string out = std::move(pending_);
  pending_.clear();
  return out;  // empty after a stop: Push cleared pending_ when it matched
}

}  // namespace tessera::text
