// StopMatcher tests: chunk boundaries, several stops, overlapping prefixes, UTF-8, Flush.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "tessera/text/sampler.h"

namespace tessera::text {
namespace {

// Feeds chunks; returns everything emitted (plus Flush() when no stop matched).
struct StreamRun {
  std::string text;
  bool stopped = false;
  int32_t stop_index = -1;
  std::vector<std::string> emits;
};
StreamRun Feed(std::vector<std::string> stops, const std::vector<std::string>& chunks) {
  StopMatcher m(std::move(stops));
  StreamRun run;
  for (const std::string& c : chunks) {
    StopMatcher::Result r = m.Push(c);
    run.emits.push_back(r.emit);
    run.text += r.emit;
    if (r.stopped) {
      run.stopped = true;
      run.stop_index = r.stop_index;
    }
  }
  run.text += m.Flush();
  return run;
}

TEST(StopMatcher, NoStopsPassesTextThrough) {
  const StreamRun r = Feed({}, {"Hello", ", ", "world"});
  EXPECT_EQ(r.emits, (std::vector<std::string>{"Hello", ", ", "world"}));
  EXPECT_FALSE(r.stopped);
}

TEST(StopMatcher, StopInsideOneChunk) {
  const StreamRun r = Feed({"END"}, {"abc END def"});
  EXPECT_TRUE(r.stopped);
  EXPECT_EQ(r.text, "abc ");
  EXPECT_EQ(r.stop_index, 0);
}

TEST(StopMatcher, StopSplitAcrossChunks) {
  const StreamRun r = Feed({"</answer>"}, {"42 </", "ans", "wer> trailing"});
  EXPECT_EQ(r.emits, (std::vector<std::string>{"42 ", "", ""}));
  EXPECT_TRUE(r.stopped);
  EXPECT_EQ(r.text, "42 ");
}

TEST(StopMatcher, HeldBackPrefixIsReleasedWhenItDoesNotMatch) {
  const StreamRun r = Feed({"STOP"}, {"a ST", "OR", "Y"});
  EXPECT_EQ(r.emits, (std::vector<std::string>{"a ", "STOR", "Y"}));
  EXPECT_FALSE(r.stopped);
  EXPECT_EQ(r.text, "a STORY");
}

TEST(StopMatcher, EarliestMatchWins) {
  // Both complete in the same push: the one that starts first wins, whatever the list order.
  StreamRun r = Feed({"world", "lo"}, {"hello world"});
  EXPECT_EQ(r.text, "hel");
  EXPECT_EQ(r.stop_index, 1);
  r = Feed({"lo", "hel"}, {"hello"});
  EXPECT_EQ(r.text, "");
  EXPECT_EQ(r.stop_index, 1);
  // Held back across chunks: "ab" could still become "abc", and "bc" is found with it.
  r = Feed({"bc", "abc"}, {"xab", "c"});
  EXPECT_EQ(r.text, "x");
  EXPECT_EQ(r.stop_index, 1);
}

TEST(StopMatcher, FirstCompletedStopEndsGeneration) {
  // "c" completes while "abcd" is still only a prefix: generation ends at "c".
  const StreamRun r = Feed({"abcd", "c"}, {"ab", "c", "d"});
  EXPECT_TRUE(r.stopped);
  EXPECT_EQ(r.stop_index, 1);
  EXPECT_EQ(r.text, "ab");
}

TEST(StopMatcher, OverlappingPrefixes) {
  // The stop's own prefix repeats: "aab" must be found in "aaab" fed one byte at a time.
  StreamRun r = Feed({"aab"}, {"a", "a", "a", "b", "zz"});
  EXPECT_TRUE(r.stopped);
  EXPECT_EQ(r.text, "a");
  // Hold the longest suffix that could start any stop: "xyx" for "xyxz", then release.
  r = Feed({"xyxz", "yy"}, {"-xyx", "y", "q"});
  EXPECT_EQ(r.emits, (std::vector<std::string>{"-", "xy", "xyq"}));
  EXPECT_FALSE(r.stopped);
}

TEST(StopMatcher, MultiByteUtf8AroundTheStop) {
  // "é" = C3 A9, "→" = E2 86 92, "😀" = F0 9F 98 80.
  StreamRun r = Feed({"→"}, {"café→", "x"});
  EXPECT_EQ(r.text, "café");
  // A multi-byte stop split inside a character.
  r = Feed({"→end"}, {"é\xE2", "\x86", "\x92", "en", "d!"});
  EXPECT_TRUE(r.stopped);
  EXPECT_EQ(r.text, "é");
  // Text split inside a character with no stop involved: never emitted half a character.
  r = Feed({"zz"}, {"a\xF0\x9F", "\x98",
                    "\x80"
                    "b"});
  EXPECT_EQ(r.emits, (std::vector<std::string>{"a", "", "😀b"}));
  // A stop that shares its lead byte with the text but not the character.
  r = Feed({"é!"}, {"è", "é", "!"});
  EXPECT_EQ(r.emits, (std::vector<std::string>{"è", "", ""}));
  EXPECT_EQ(r.text, "è");
}

TEST(StopMatcher, FlushReleasesHeldText) {
  StopMatcher m({"###"});
  EXPECT_EQ(m.Push("result ##").emit, "result ");
  EXPECT_EQ(m.Flush(), "##");
  EXPECT_EQ(m.Flush(), "");
  StopMatcher incomplete({});
  EXPECT_EQ(incomplete.Push("ok \xE2\x86").emit, "ok ");
  EXPECT_EQ(incomplete.Flush(), "\xE2\x86");  // end of stream: release even a broken tail
}

TEST(StopMatcher, AfterStopEverythingIsDropped) {
  StopMatcher m({"\n\n"});
  StopMatcher::Result r = m.Push("line\n\nmore");
  EXPECT_TRUE(r.stopped);
  EXPECT_EQ(r.emit, "line");
  r = m.Push("even more");
  EXPECT_TRUE(r.stopped);
  EXPECT_EQ(r.emit, "");
  EXPECT_EQ(m.Flush(), "");
}

TEST(StopMatcher, EmptyStopStringsAreIgnored) {
  const StreamRun r = Feed({"", "x"}, {"abc", "dxe"});
  EXPECT_EQ(r.text, "abcd");
  EXPECT_EQ(r.stop_index, 1);
}

TEST(StopMatcher, RandomChunkingMatchesWholeText) {
  // With one stop the outcome cannot depend on chunking: output = text before its first match.
  const std::string text = "αβγ stop-ish stöp st stop! tail";
  const std::string stop = "stop!";
  const std::string want = text.substr(0, text.find(stop));
  std::mt19937 gen(1);
  for (int trial = 0; trial < 300; ++trial) {
    std::vector<std::string> chunks;
    for (size_t i = 0; i < text.size();) {
      const size_t len = std::uniform_int_distribution<size_t>(1, 5)(gen);
      chunks.push_back(text.substr(i, len));  // may split multi-byte characters
      i += len;
    }
    const StreamRun r = Feed({stop}, chunks);
    ASSERT_TRUE(r.stopped);
    ASSERT_EQ(r.text, want);
    for (const std::string& e : r.emits) {
      // Never ends inside a UTF-8 sequence: the last lead byte's sequence is complete.
      size_t k = e.size();
      while (k > 0 && (static_cast<unsigned char>(e[k - 1]) & 0xC0) == 0x80) --k;
      if (k == 0) continue;
      const auto lead = static_cast<unsigned char>(e[k - 1]);
      const size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
      ASSERT_EQ(e.size() - (k - 1), need) << "split character in \"" << e << "\"";
    }
  }
}

}  // namespace
}  // namespace tessera::text
