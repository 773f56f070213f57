// JsonOut writes what nlohmann::json::dump() wrote before answers streamed:
// the same numbers, the same escapes, keys in the same (sorted) order, in
// pieces no larger than asked for plus one value. And every row the API
// renders through it is in that canonical form.
#include "projections/read/json_out.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "tests/projections_fixture.h"

namespace okr::testing {
namespace {

using nlohmann::json;

TEST(JsonOut, NumbersAreWrittenAsNlohmannDumpsThem) {
  const double kCases[] = {0.1,
                           20.0,
                           1e15,
                           1e16,
                           1e21,
                           1e-5,
                           1e-7,
                           1.0 / 3,
                           5e-324,
                           -0.0,
                           1e308,
                           -3.0,
                           0.0,
                           2.5e-5,
                           1234567.125,
                           std::numeric_limits<double>::max(),
                           std::numeric_limits<double>::lowest()};
  for (double v : kCases) {
    SCOPED_TRACE(v);
    EXPECT_EQ(WriteJson([&](JsonOut& out) { out.Number(v); }), json(v).dump());
  }
  // Not finite: null, as nlohmann dumps them (okrd's answers never hold one).
  for (double v : {std::nan(""), double{INFINITY}, -double{INFINITY}}) {
    EXPECT_EQ(WriteJson([&](JsonOut& out) { out.Number(v); }), "null");
  }
  EXPECT_EQ(WriteJson([](JsonOut& out) { out.Uint(UINT64_MAX); }), json(UINT64_MAX).dump());
  EXPECT_EQ(WriteJson([](JsonOut& out) { out.Int(INT64_MIN); }), json(INT64_MIN).dump());
}

TEST(JsonOut, WholeNumbersTakeTheShortPathToTheSameText) {
  // Whole numbers below 1e15 are written from the integer; the rest, and
  // every number at the boundary, as nlohmann writes them.
  std::vector<double> cases = {1,     -1,       100,       -0.0,       0.0,
                               1e14,  -1e14,    1e15 - 1,  -1e15 + 1,  1e15,
                               -1e15, 1e15 + 2, 4096,      1e6,        123456789,
                               0.5,   -0.5,     99.999999, 1e15 - 0.5, 9007199254740993.0};
  std::mt19937_64 rng(12);
  for (int i = 0; i < 2000; ++i) {
    const int digits = 1 + static_cast<int>(rng() % 15);
    double v = static_cast<double>(rng() % static_cast<uint64_t>(std::pow(10, digits)));
    cases.push_back(i % 2 ? v : -v);
  }
  for (double v : cases) {
    SCOPED_TRACE(v);
    EXPECT_EQ(WriteJson([&](JsonOut& out) { out.Number(v); }), json(v).dump());
  }
}

TEST(JsonOut, TextNeedingAnEscapeIsFoundAtAnyPosition) {
  // Plain text is copied as it is, eight bytes checked at a time: an
  // escape must be seen at every position of the word and in the tail.
  // (Other control characters, which okrd refuses, are escaped too, in
  // upper-case hex where nlohmann writes lower case: the same text back.)
  for (std::string special : {"\"", "\\", "\n", "\t", "\r", "\b", "\x01", "\x1f"}) {
    for (size_t at = 0; at < 19; ++at) {
      std::string s(19, 'a');
      s.replace(at, 1, special);
      SCOPED_TRACE(s);
      const std::string text = WriteJson([&](JsonOut& out) { out.String(s); });
      const std::string key =
          WriteJson([&](JsonOut& out) { out.StartObject().Key(s).Null().EndObject(); });
      if (static_cast<unsigned char>(special[0]) >= 0x20 || special == "\n" || special == "\t" ||
          special == "\r" || special == "\b") {
        EXPECT_EQ(text, json(s).dump());
        EXPECT_EQ(key, json({{s, nullptr}}).dump());
      }
      EXPECT_EQ(json::parse(text), json(s));
      EXPECT_EQ(json::parse(key), json({{s, nullptr}}));
    }
  }
  // Bytes either side of the escaped ranges stay as they are.
  const std::string plain = "\x20!#[]~\x7f\u00e9\u20ac: 0123456789 abc";
  EXPECT_EQ(WriteJson([&](JsonOut& out) { out.String(plain); }), json(plain).dump());
}

TEST(JsonOut, StringsAreEscapedAsNlohmannEscapesThem) {
  // Text okrd stores is valid UTF-8 with no control characters but tab and
  // line breaks (the writer refuses the rest).
  for (const char* s : {"plain", "tab\there", "lines\nand\r\n", "quote \" and \\", "é€😀",
                        "</script>", "=1+2", "", "\x7f"}) {
    SCOPED_TRACE(s);
    EXPECT_EQ(WriteJson([&](JsonOut& out) { out.String(s); }), json(s).dump());
  }
  EXPECT_EQ(WriteJson([](JsonOut& out) { out.StringOrNull(""); }), "null");
  EXPECT_EQ(WriteJson([](JsonOut& out) { out.NumberOrNull(std::nullopt); }), "null");
}

TEST(JsonOut, ADocumentIsTheSameTextAsItsDump) {
  const json doc = {{"a", {1, 2.5, "x", nullptr, true}}, {"b", {{"c", json::object()}}}};
  const std::string text = WriteJson([&](JsonOut& out) {
    out.StartObject().Key("a").StartArray().Uint(1).Number(2.5).String("x").Null().Bool(true);
    out.EndArray().Key("b").StartObject().Key("c").Json(json::object()).EndObject().EndObject();
  });
  EXPECT_EQ(text, doc.dump());
}

TEST(JsonOut, ASinkReceivesTheTextInBoundedPieces) {
  std::vector<std::string> pieces;
  constexpr size_t kFlushAt = 256;
  JsonOut out([&](std::string_view piece) { pieces.emplace_back(piece); }, kFlushAt);
  out.StartArray();
  for (int i = 0; i < 1000; ++i) out.String("item number " + std::to_string(i));
  out.EndArray();
  out.Flush();
  ASSERT_GT(pieces.size(), 10u);
  std::string whole;
  for (const std::string& p : pieces) {
    EXPECT_LT(p.size(), kFlushAt + 32) << "a piece is at most the threshold plus one value";
    whole += p;
  }
  EXPECT_EQ(out.bytes(), whole.size());
  json expected = json::array();
  for (int i = 0; i < 1000; ++i) expected.push_back("item number " + std::to_string(i));
  EXPECT_EQ(whole, expected.dump());
}

// Every kind of row, with the optional parts both present and absent.
class RenderedRowsTest : public HrHiringTest {
 protected:
  // True when `text` is nlohmann's own dump of what it parses to: keys
  // sorted, numbers and escapes in its form.
  static ::testing::AssertionResult Canonical(const std::string& text) {
    const std::string again = json::parse(text).dump();
    if (again == text) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "written: " << text << "\ncanonical: " << again;
  }
};

TEST_F(RenderedRowsTest, EveryRowIsWrittenInCanonicalForm) {
  ASSERT_OK(AddKeyResult("kr-hires", "hr-hiring", "Hires \"made\" \\ now", 0, 20, "number", 2.5));
  ASSERT_OK(AddKeyResult("kr-quiet", "hr-hiring", "No check-ins yet", 0, 1e15));
  ASSERT_OK(CheckIn("kr-hires", 4, std::nullopt, "ci-1", "amara"));
  ASSERT_OK(Review("hr-hiring", 0.7, "partially", "Slow\nhiring", "Start earlier"));
  View v = ViewAt();
  const Projection& p = v.projection();
  for (const auto& [id, unit] : p.units()) {
    SCOPED_TRACE(id);
    EXPECT_TRUE(Canonical(WriteJson([&](JsonOut& o) { WriteUnit(o, v.UnitRowOf(unit)); })));
  }
  for (const auto& [id, cycle] : p.cycles()) {
    SCOPED_TRACE(id);
    EXPECT_TRUE(Canonical(WriteJson([&](JsonOut& o) { WriteCycle(o, v.CycleRowOf(cycle)); })));
  }
  for (const auto& [id, kr] : p.key_results()) {
    SCOPED_TRACE(id);
    EXPECT_TRUE(Canonical(WriteJson([&](JsonOut& o) { WriteKeyResult(o, v.KeyResultRowOf(kr)); })));
  }
  const Objective* objective = p.objective("hr-hiring");
  ASSERT_NE(objective, nullptr);
  const std::string text =
      WriteJson([&](JsonOut& o) { WriteObjective(o, v.ObjectiveRowOf(*objective)); });
  EXPECT_TRUE(Canonical(text));
  EXPECT_NE(text.find("\"review\":{"), std::string::npos) << "the review is written";
  auto cascade = CascadePlan::Make(v, "2026-q1", "", std::nullopt);
  ASSERT_OK(cascade);
  EXPECT_TRUE(Canonical(WriteJson([&](JsonOut& o) { cascade->Write(v, o, 7); })));
  auto top = CascadePlan::Make(v, "2026-q1", "", 0);
  ASSERT_OK(top);
  EXPECT_TRUE(Canonical(WriteJson([&](JsonOut& o) { top->Write(v, o, std::nullopt); })));
}

}  // namespace
}  // namespace okr::testing
