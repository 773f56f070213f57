// okrctl's client commands against a running okrd: checkin, objectives,
// cascade, review, history. Each is one or a few HTTP requests, printed
// as a table or as okrd's own JSON.
#include <cassert>
#include <cstdio>
#include <iostream>
#include <random>

#include "tools/ctl/cmd_common.h"

namespace okr::ctl::cmd {
namespace {

using nlohmann::json;

// The largest page okrd serves: fewest round trips.
constexpr const char* kPageLimit = "limit=1000";

// Every item of a paged list, and the seq its pages show the state at.
struct Paged {
  json items = json::array();
  uint64_t as_of_seq = 0;
};

int FetchObjectivePages(Client& client, const std::string& cycle, const std::string& owner,
                        const std::optional<uint64_t>& as_of, Paged* out) {
  std::string cursor;
  std::optional<uint64_t> pinned = as_of;
  for (;;) {
    std::string path =
        "/v1/objectives?" + std::string(kPageLimit) + "&cycle=" + QueryEncode(cycle) + AsOf(pinned);
    if (!owner.empty()) path += "&owner=" + QueryEncode(owner);
    if (!cursor.empty()) path += "&cursor=" + QueryEncode(cursor);
    HttpAnswer a = client.Get(path);
    if (int rc = Answered(a, "GET /v1/objectives"); rc != kExitOk) return rc;
    out->as_of_seq = a.json.value("as_of_seq", uint64_t{0});
    for (const json& o : a.json["items"]) out->items.push_back(o);
    if (!a.json["next"].is_string()) return kExitOk;
    cursor = a.json["next"].get<std::string>();
    // Later pages show the same moment as the first.
    pinned = out->as_of_seq;
  }
}

int FetchHistoryPages(Client& client, const std::string& path, Paged* out) {
  std::string after;
  for (;;) {
    HttpAnswer a = client.Get(path + "?" + kPageLimit + (after.empty() ? "" : "&after=" + after));
    if (int rc = Answered(a, "GET " + path); rc != kExitOk) return rc;
    if (out->as_of_seq == 0) out->as_of_seq = a.json.value("as_of_seq", uint64_t{0});
    for (const json& e : a.json["items"]) out->items.push_back(e);
    if (!a.json["next"].is_string()) return kExitOk;
    after = a.json["next"].get<std::string>();
  }
}

void PrintPagedJson(const Paged& paged) {
  std::cout << json{{"items", paged.items}, {"as_of_seq", paged.as_of_seq}}.dump() << "\n";
}

void PrintCascadeNode(const json& node, int depth) {
  assert(depth >= 0);
  std::string indent(static_cast<size_t>(depth) * 2, ' ');
  const json& unit = node["unit"];
  std::cout << indent << Str(unit["name"]) << " (" << Str(unit["id"]) << ")";
  if (node.contains("progress")) std::cout << "  " << Percent(node["progress"]);
  std::cout << "\n";
  for (const json& o : node["objectives"]) {
    std::cout << indent << "  * " << Percent(o["progress"]) << "  " << Str(o["title"]) << " ["
              << Str(o["id"]) << "]\n";
  }
  for (const json& child : node["children"]) PrintCascadeNode(child, depth + 1);
}

}  // namespace

int CheckIn(Client& client, const CheckInOptions& o, bool json_out) {
  assert(!o.key_result.empty());
  json body = {{"value", o.value}};
  if (!o.note.empty()) body["note"] = o.note;
  if (!o.status.empty()) body["status"] = o.status;
  if (!o.measured_at.empty()) body["measured_at"] = o.measured_at;
  if (o.confidence) body["confidence"] = *o.confidence;
  std::string path = "/v1/key-results/" + QueryEncode(o.key_result) + "/check-ins";
  // A retry after a dropped connection must not record the check-in twice.
  std::random_device random;
  char key[40];
  std::snprintf(key, sizeof key, "okrctl-checkin-%08x%08x", random(), random());
  HttpAnswer a = client.Post(path, body, key);
  if (int rc = Answered(a, "POST " + path); rc != kExitOk) return rc;
  if (json_out) {
    std::cout << a.json.dump() << "\n";
    return kExitOk;
  }
  const json& ci = a.json["check_in"];
  std::cout << "check-in " << Str(ci["id"]) << " on " << o.key_result << ": "
            << Number(a.json["current"]) << " " << Str(a.json["unit"]) << " of "
            << Number(a.json["target"]) << ", progress " << Percent(a.json["progress"]) << " (seq "
            << a.json.value("seq", uint64_t{0}) << ")\n";
  return kExitOk;
}

int Objectives(Client& client, const std::string& cycle, const std::string& owner,
               const std::optional<uint64_t>& as_of, bool json_out) {
  Paged paged;
  if (int rc = FetchObjectivePages(client, cycle, owner, as_of, &paged); rc != kExitOk) return rc;
  if (json_out) {
    PrintPagedJson(paged);
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows;
  for (const json& o : paged.items) {
    rows.push_back({Str(o["id"]), Str(o["owner"]), Percent(o["progress"]), "", Str(o["title"])});
    for (const json& k : o["key_results"]) {
      std::string value = Number(k["current"]) + " / " + Number(k["target"]);
      if (!Str(k["unit"]).empty()) value += " " + Str(k["unit"]);
      rows.push_back(
          {"  " + Str(k["id"]), Str(k["owner"]), Percent(k["progress"]), value, Str(k["title"])});
    }
  }
  assert(rows.size() >= paged.items.size());
  PrintTable({"ID", "OWNER", "PROGRESS", "CURRENT / TARGET", "TITLE"}, rows);
  std::cout << paged.items.size() << " objectives in " << cycle << " as of seq " << paged.as_of_seq
            << "\n";
  return kExitOk;
}

int Cascade(Client& client, const std::string& cycle, const std::string& root,
            const std::optional<uint64_t>& as_of, bool json_out) {
  std::string path = "/v1/cascade?cycle=" + QueryEncode(cycle) + AsOf(as_of);
  if (!root.empty()) path += "&root=" + QueryEncode(root);
  HttpAnswer a = client.Get(path);
  if (int rc = Answered(a, "GET /v1/cascade"); rc != kExitOk) return rc;
  if (json_out) {
    std::cout << a.json.dump() << "\n";
    return kExitOk;
  }
  for (const json& node : a.json["nodes"]) PrintCascadeNode(node, 0);
  std::cout << "cycle " << cycle << " as of seq " << a.json.value("as_of_seq", uint64_t{0}) << "\n";
  return kExitOk;
}

int Review(Client& client, const std::string& cycle, const std::string& format,
           const std::optional<uint64_t>& as_of) {
  assert(format == "md" || format == "csv" || format == "json");
  std::string path = "/v1/cycles/" + QueryEncode(cycle) + "/review?format=" + format + AsOf(as_of);
  HttpAnswer a = client.Get(path);
  if (int rc = Answered(a, "GET /v1/cycles/" + cycle + "/review"); rc != kExitOk) return rc;
  // Markdown and CSV are printed as okrd wrote them; JSON indented.
  std::cout << (format == "json" ? a.json.dump(2) + "\n" : a.body);
  return kExitOk;
}

int History(Client& client, const std::string& id, bool json_out) {
  assert(!id.empty());
  Paged paged;
  if (int rc = FetchHistoryPages(client, "/v1/history/" + QueryEncode(id), &paged); rc != kExitOk)
    return rc;
  if (json_out) {
    PrintPagedJson(paged);
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows;
  for (const json& e : paged.items) {
    rows.push_back({std::to_string(e.value("seq", uint64_t{0})),
                    Str(e["recorded_at"]).substr(0, 19) + "Z", Str(e["actor"]), Str(e["type"]),
                    std::to_string(e.value("version", uint64_t{0})), Str(e["reason"])});
  }
  PrintTable({"SEQ", "RECORDED", "ACTOR", "TYPE", "VERSION", "REASON"}, rows);
  return kExitOk;
}

}  // namespace okr::ctl::cmd
