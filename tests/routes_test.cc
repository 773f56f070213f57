// The route table (api/routes/routes.h) against docs/openapi.json, and
// RenderCommand against ParseCommand: every route okrd serves is documented
// with its method and nothing else is, the documented event types are the
// log's own, and every command kind renders to a request that parses back
// into the same command.
#include <capnp/schema.h>
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <regex>
#include <set>

#include "api/routes/routes.h"
#include "eventstore/event_codec.h"

namespace okr::api {
namespace {

using nlohmann::json;

std::string Lower(std::string s) {
  for (char& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return s;
}

json OpenApi() {
  std::ifstream in(OKR_OPENAPI_JSON_PATH);
  EXPECT_TRUE(in) << "cannot read " << OKR_OPENAPI_JSON_PATH;
  return json::parse(std::string(std::istreambuf_iterator<char>(in), {}));
}

std::set<std::string> DocumentedOperations() {
  json doc = OpenApi();
  static const std::set<std::string> kMethods = {"get",     "put",  "post",  "delete",
                                                 "options", "head", "patch", "trace"};
  std::set<std::string> out;
  for (const auto& [path, item] : doc.at("paths").items()) {
    for (const auto& [method, operation] : item.items()) {
      if (kMethods.count(method)) out.insert(method + " " + path);
    }
  }
  return out;
}

TEST(RoutesTest, EveryRouteIsDocumentedAndNothingElse) {
  std::set<std::string> served;
  for (const Route& r : AllRoutes()) {
    // The template is the regex with each capture written {id}.
    std::string templated = std::regex_replace(r.pattern, std::regex(R"(\(\[\^/\]\+\))"), "{id}");
    EXPECT_EQ(templated, r.openapi_path) << r.Name();
    EXPECT_TRUE(served.insert(Lower(r.method) + " " + r.openapi_path).second)
        << "twice: " << r.Name();
  }
  ASSERT_GE(served.size(), 10u);
  std::set<std::string> documented = DocumentedOperations();
  for (const std::string& op : served) {
    EXPECT_TRUE(documented.count(op)) << "served but missing from docs/openapi.json: " << op;
  }
  for (const std::string& op : documented) {
    EXPECT_TRUE(served.count(op)) << "in docs/openapi.json but not served: " << op;
  }
}

// /v1/events?type= takes exactly the event types okrd writes (anything
// else is 400): the documented enum names each of them, and nothing else.
TEST(RoutesTest, TheDocumentedEventTypesAreTheLogsOwn) {
  std::set<std::string> written;
  for (capnp::StructSchema::Field field : capnp::Schema::from<schema::Event>().getUnionFields()) {
    const auto which = static_cast<schema::Event::Which>(field.getProto().getDiscriminantValue());
    const std::string name = EventTypeName(which);
    EXPECT_EQ(EventTypeNamed(name), which) << name;
    written.insert(name);
  }
  ASSERT_GE(written.size(), 30u);
  const json doc = OpenApi();
  std::set<std::string> documented;
  for (const json& t : doc.at("components").at("schemas").at("EventType").at("enum")) {
    documented.insert(t.get<std::string>());
  }
  EXPECT_EQ(documented, written);
}

TEST(RoutesTest, EveryWriteRouteIsInTheTable) {
  std::set<WriteRoute> writes;
  for (const Route& r : AllRoutes()) {
    if (r.write) writes.insert(*r.write);
  }
  EXPECT_EQ(writes.size(), static_cast<size_t>(WriteRoute::kReview) + 1);
}

// Each command kind twice: every field set, and only what is required.
std::vector<Command> SampleCommands() {
  return {
      CreateUnit{"eng", "team", "Engineering", "org", "eng@example.com"},
      CreateUnit{"eng", "team", "Engineering", "", ""},
      UpdateUnit{"eng", "Eng", "org", ""},
      UpdateUnit{"eng", std::nullopt, std::nullopt, std::nullopt},
      RetireUnit{"eng"},
      CreateCycle{"q1", "Q1", "2026-01-01", "2026-03-31", "y2026"},
      CreateCycle{"q1", "Q1", "2026-01-01", "2026-03-31", ""},
      UpdateCycle{"q1", "Q1'", "2026-01-02", "2026-03-30", ""},
      UpdateCycle{"q1", std::nullopt, std::nullopt, std::nullopt, std::nullopt},
      CloseCycle{"q1"},
      ReopenCycle{"q1"},
      CreateObjective{"o1", "q1", "eng", "Ship", "Ship it", {"o0", "o00"}},
      CreateObjective{"o1", "q1", "eng", "Ship", "", {}},
      UpdateObjective{"o1", "Ship!", "more", "ops", std::vector<std::string>{"o0"}, true},
      UpdateObjective{"o1", std::nullopt, std::nullopt, std::nullopt, std::vector<std::string>{},
                      false},
      UpdateObjective{"o1", std::nullopt, std::nullopt, std::nullopt, std::nullopt, std::nullopt},
      ArchiveObjective{"o1"},
      CreateKeyResult{"k1", "o1", "Latency", "ops", "percent", 10, 99.5, "%", 2},
      CreateKeyResult{"k1", "o1", "Latency", "", "number", 0, 5, "", 1},
      UpdateKeyResult{"k1", "L", "eng", "boolean", "ms", 1, 2, 0.5},
      UpdateKeyResult{"k1", std::nullopt, std::nullopt, std::nullopt, std::nullopt, std::nullopt,
                      std::nullopt, std::nullopt},
      RemoveKeyResult{"k1"},
      RecordCheckIn{"k1", "c1", 42.25, 0.75, "at_risk", "slow", int64_t{1767225600123456}},
      RecordCheckIn{"k1", "", 3, std::nullopt, "", "", std::nullopt},
      CorrectCheckIn{"k1", "c1", 40, "typo"},
      CorrectCheckIn{"k1", "c1", 40, ""},
      AddComment{"o1", "looks good"},
      ReviewObjective{"o1", 0.7, "met", "went well", "start sooner"},
      ReviewObjective{"o1", 0.7, "met", "", ""},
  };
}

// The table's route for `rendered` and the path id it captures.
const Route* Match(const RenderedCommand& rendered, std::string* id) {
  for (const Route& r : AllRoutes()) {
    std::smatch m;
    if (r.method != rendered.method || !std::regex_match(rendered.path, m, std::regex(r.pattern)))
      continue;
    *id = m.size() > 1 ? m[1].str() : "";
    return &r;
  }
  return nullptr;
}

TEST(RoutesTest, RenderCommandIsTheInverseOfParseCommand) {
  for (const std::string reason : {"", "quarterly planning"}) {
    for (const Command& command : SampleCommands()) {
      RenderedCommand rendered = RenderCommand(command, reason);
      SCOPED_TRACE(rendered.method + " " + rendered.path + " " + rendered.body.dump());
      std::string id;
      const Route* route = Match(rendered, &id);
      ASSERT_NE(route, nullptr);
      ASSERT_EQ(route->write, WriteRouteOf(command));
      // The body as a client sends it: text, parsed the way okrd parses it.
      ApiError error;
      auto body = ParseBody(rendered.body.dump(), &error);
      ASSERT_TRUE(body) << error.message;
      std::string parsed_reason;
      auto parsed = ParseCommand(*route->write, id, *body, &parsed_reason, &error);
      ASSERT_TRUE(parsed) << error.message;
      EXPECT_EQ(parsed->index(), command.index());
      EXPECT_EQ(parsed_reason, reason);
      RenderedCommand again = RenderCommand(*parsed, parsed_reason);
      EXPECT_EQ(again.path, rendered.path);
      EXPECT_EQ(again.body.dump(), rendered.body.dump());
    }
  }
}

// okrctl's importer sends these kinds; their requests must not change.
TEST(RoutesTest, ImportedKindsRenderAsTheImporterSendsThem) {
  auto unit = RenderCommand(CreateUnit{"eng", "team", "Engineering", "", ""}, "import");
  EXPECT_EQ(unit.method, "POST");
  EXPECT_EQ(unit.path, "/v1/units");
  EXPECT_EQ(unit.body.dump(),
            R"({"id":"eng","kind":"team","name":"Engineering","reason":"import"})");
  auto close = RenderCommand(CloseCycle{"q1"}, "");
  EXPECT_EQ(close.path, "/v1/cycles/q1/close");
  EXPECT_EQ(close.body.dump(), "{}");
  auto objective = RenderCommand(CreateObjective{"o1", "q1", "eng", "Ship", "", {}}, "");
  EXPECT_EQ(
      objective.body.dump(),
      R"({"cycle":"q1","description":"","id":"o1","owner":"eng","parents":[],"title":"Ship"})");
  auto check_in = RenderCommand(RecordCheckIn{"k1", "", 3, std::nullopt, "", "", std::nullopt}, "");
  EXPECT_EQ(check_in.path, "/v1/key-results/k1/check-ins");
  EXPECT_EQ(check_in.body.dump(), R"({"value":3.0})");
}

// The validators of state reads (api/routes/request.h): an If-Match names a
// version however a client quotes it, and If-None-Match matches by seq
// only in the tag form of its route.
TEST(Validators, IfMatchNamesTheVersionOfABareNumberOrAnEntityTag) {
  EXPECT_EQ(StateTag(120), "\"120\"");
  EXPECT_EQ(StateTag(120, 7), "\"7.120\"");
  EXPECT_EQ(ParseIfMatch("7"), 7u);
  EXPECT_EQ(ParseIfMatch("\"7\""), 7u);
  EXPECT_EQ(ParseIfMatch(" \"7.120\" "), 7u);
  for (const char* bad : {"", "\"\"", "W/\"7\"", "*", "\"7.\"", "\".7\"", "\"7.1.2\"", "-7", "\"7",
                          "99999999999999999999999"}) {
    EXPECT_EQ(ParseIfMatch(bad), std::nullopt) << bad;
  }
}

TEST(Validators, IfNoneMatchNamesATagOnlyByItsWholeOpaqueText) {
  EXPECT_TRUE(IfNoneMatchNames("\"120\"", "\"120\""));
  EXPECT_TRUE(IfNoneMatchNames("\"1\", W/\"120\"", "\"120\""));
  EXPECT_TRUE(IfNoneMatchNames("W/\"7.120\",\"8.121\"", "\"7.120\""));
  EXPECT_FALSE(IfNoneMatchNames("\"999.120\"", "\"7.120\""));  // another version, same seq
  EXPECT_FALSE(IfNoneMatchNames("\"120\"", "\"7.120\""));      // a write's bare version
  EXPECT_FALSE(IfNoneMatchNames("\"7.120\"", "\"120\""));      // not this route's form
  EXPECT_FALSE(IfNoneMatchNames("\"0120\"", "\"120\""));       // opaque: not a number
  EXPECT_FALSE(IfNoneMatchNames("\"121\"", "\"120\""));
  EXPECT_FALSE(IfNoneMatchNames("\"120", "\"120\""));
  EXPECT_FALSE(IfNoneMatchNames("garbage, \"120\"", "\"120\""));  // malformed: no match
  std::string beyond;
  for (size_t i = 0; i < kMaxIfNoneMatchTags; ++i) beyond += "\"1\", ";
  EXPECT_FALSE(IfNoneMatchNames(beyond + "\"120\"", "\"120\""));  // read no further
  EXPECT_TRUE(IfNoneMatchAny(" * "));
  EXPECT_FALSE(IfNoneMatchAny("\"*\""));
}

}  // namespace
}  // namespace okr::api
