#include "tools/ctl/export.h"

#include <functional>
#include <set>
#include <unordered_map>

#include "projections/read/views.h"
#include "tools/ctl/csv.h"

namespace okr::ctl {

using nlohmann::json;
using nlohmann::ordered_json;

namespace {

// Cycles nest a few levels (a quarter in a year); this only bounds a loop.
constexpr int kMaxCycleDepth = 64;

std::string Str(const json& v) { return v.is_string() ? v.get<std::string>() : ""; }
double Num(const json& v) { return v.is_number() ? v.get<double>() : 0.0; }

// Units parent first, siblings by id.
std::vector<const json*> UnitsInTreeOrder(const json& units) {
  std::map<std::string, const json*> by_id;
  for (const json& u : units) by_id[Str(u["id"])] = &u;
  std::map<std::string, std::vector<const json*>> children;  // parent id → children (by id)
  std::vector<const json*> roots;
  for (const auto& [id, u] : by_id) {
    std::string parent = Str((*u)["parent"]);
    if (parent.empty() || !by_id.count(parent))
      roots.push_back(u);
    else
      children[parent].push_back(u);
  }
  std::vector<const json*> out;
  std::function<void(const json*)> walk = [&](const json* u) {
    out.push_back(u);
    for (const json* c : children[Str((*u)["id"])]) walk(c);
  };
  for (const json* r : roots) walk(r);
  return out;
}

// Objectives after the objectives of the same export they align to; among
// those ready, by id.
std::vector<const json*> ObjectivesInAlignmentOrder(const json& objectives) {
  std::map<std::string, const json*> by_id;
  for (const json& o : objectives) by_id[Str(o["id"])] = &o;
  std::map<std::string, size_t> waiting;  // id → parents in the export not yet placed
  std::map<std::string, std::vector<std::string>> children;
  for (const auto& [id, o] : by_id) {
    size_t n = 0;
    for (const json& p : (*o)["parents"]) {
      if (by_id.count(Str(p))) {
        ++n;
        children[Str(p)].push_back(id);
      }
    }
    waiting[id] = n;
  }
  std::set<std::string> ready;
  for (const auto& [id, n] : waiting) {
    if (n == 0) ready.insert(id);
  }
  std::vector<const json*> out;
  while (!ready.empty()) {
    std::string id = *ready.begin();
    ready.erase(ready.begin());
    out.push_back(by_id[id]);
    for (const auto& c : children[id]) {
      if (--waiting[c] == 0) ready.insert(c);
    }
  }
  return out;  // alignment is acyclic, so every objective is placed
}

// The key result's own owner: empty when it is its objective's.
std::string OwnOwner(const json& kr, const json& objective) {
  std::string owner = Str(kr["owner"]);
  return owner == Str(objective["owner"]) ? "" : owner;
}

std::string Join(const json& list, char separator) {
  std::string out;
  for (const json& v : list) {
    if (!out.empty()) out.push_back(separator);
    out += Str(v);
  }
  return out;
}

// Follows a cursor-paged list route to its end.
Status Paged(Client& client, const std::string& path, json* items) {
  std::string cursor;
  for (;;) {
    std::string url = path + (path.find('?') == std::string::npos ? "?" : "&") + "limit=1000";
    if (!cursor.empty()) url += "&cursor=" + QueryEncode(cursor);
    HttpAnswer a = client.Get(url);
    if (!a.ok()) return Status::IOError("GET " + path + ": " + a.Describe());
    for (const json& item : a.json["items"]) items->push_back(item);
    if (!a.json["next"].is_string()) return Status::Ok();
    cursor = a.json["next"].get<std::string>();
  }
}

}  // namespace

Result<ExportInput> CollectFromProjection(const Projection& p, const std::string& cycle,
                                          uint64_t as_of, bool with_check_ins) {
  if (as_of > p.seq()) {
    return Status::Invalid("as of seq " + std::to_string(as_of) + " is beyond the head seq " +
                           std::to_string(p.seq()));
  }
  ExportInput in;
  in.cycle = cycle;
  in.as_of_seq = as_of;
  View v(p, as_of, INT64_MAX, p.TimeOfSeq(as_of));
  const Cycle* c = p.cycle(cycle);
  if (!c || !c->At(as_of)) return Status::NotFound("no cycle " + cycle);
  for (const auto& [id, unit] : p.units()) {
    const UnitFields* f = unit.FieldsAt(as_of);
    if (f && !f->retired) in.units.push_back(v.UnitJson(unit));
  }
  std::vector<json> chain;
  for (std::string at = cycle; !at.empty() && chain.size() < kMaxCycleDepth;) {
    const Cycle* x = p.cycle(at);
    if (!x || !x->At(as_of)) break;
    chain.push_back(v.CycleJson(*x));
    at = x->FieldsAt(as_of)->parent;
  }
  for (auto it = chain.rbegin(); it != chain.rend(); ++it) in.cycles.push_back(*it);
  for (const Objective* o : v.Objectives({cycle, "", false})) {
    in.objectives.push_back(v.ObjectiveJson(*o));
    if (!with_check_ins) continue;
    for (const KeyResult* kr : v.KeyResultsOf(*o)) {
      json series = json::array();
      for (const CheckIn& ci : CheckInSeries(*kr, as_of)) series.push_back(v.CheckInJson(ci));
      in.check_ins[kr->id] = std::move(series);
    }
  }
  return in;
}

Result<ExportInput> CollectFromServer(Client& client, const std::string& cycle,
                                      std::optional<uint64_t> as_of, bool with_check_ins,
                                      const std::function<void(size_t, size_t)>& progress) {
  ExportInput in;
  in.cycle = cycle;
  std::string path = "/v1/cycles/" + QueryEncode(cycle);
  HttpAnswer first = client.Get(as_of ? path + "?as_of=" + std::to_string(*as_of) : path);
  if (!first.ok()) return Status::IOError("GET " + path + ": " + first.Describe());
  // Every later read is pinned to the seq the first one reflects.
  in.as_of_seq = first.json["as_of_seq"].get<uint64_t>();
  const std::string pin = "as_of=" + std::to_string(in.as_of_seq);
  std::vector<json> chain = {first.json};
  while (chain.size() < kMaxCycleDepth && chain.back()["parent"].is_string()) {
    std::string parent = "/v1/cycles/" + QueryEncode(Str(chain.back()["parent"]));
    HttpAnswer a = client.Get(parent + "?" + pin);
    if (!a.ok()) return Status::IOError("GET " + parent + ": " + a.Describe());
    chain.push_back(a.json);
  }
  for (auto it = chain.rbegin(); it != chain.rend(); ++it) in.cycles.push_back(*it);
  json units = json::array();
  if (Status s = Paged(client, "/v1/units?" + pin, &units); !s.ok()) return s;
  for (const json& u : units) {
    if (Str(u["state"]) == "active") in.units.push_back(u);
  }
  if (Status s =
          Paged(client, "/v1/objectives?cycle=" + QueryEncode(cycle) + "&" + pin, &in.objectives);
      !s.ok()) {
    return s;
  }
  if (with_check_ins) {
    size_t total = 0, done = 0;
    for (const json& o : in.objectives) total += o["key_results"].size();
    for (const json& o : in.objectives) {
      for (const json& kr : o["key_results"]) {
        if (progress) progress(done++, total);
        std::string id = Str(kr["id"]);
        json series = json::array();
        Status s =
            Paged(client, "/v1/key-results/" + QueryEncode(id) + "/check-ins?" + pin, &series);
        if (!s.ok()) return s;
        in.check_ins[id] = std::move(series);
      }
    }
  }
  return in;
}

std::string RenderCsv(const ExportInput& in) {
  static const char* const kHeader =
      "cycle,owner,objective_id,objective_title,parents,kr_id,kr_title,metric,start,target,unit,"
      "current,checkin_date,kr_owner,weight,objective_description";
  std::string out = std::string(kHeader) + "\r\n";
  for (const json* op : ObjectivesInAlignmentOrder(in.objectives)) {
    const json& o = *op;
    std::string objective = CsvText(Str(o["cycle"])) + "," + CsvText(Str(o["owner"])) + "," +
                            CsvText(Str(o["id"])) + "," + CsvText(Str(o["title"])) + "," +
                            CsvText(Join(o["parents"], ';')) + ",";
    std::string description = CsvText(Str(o["description"]));
    if (o["key_results"].empty()) {
      out += objective + ",,,,,,,,,," + description + "\r\n";
      continue;
    }
    for (const json& k : o["key_results"]) {
      const json& last = k["last_check_in"];
      out += objective + CsvText(Str(k["id"])) + "," + CsvText(Str(k["title"])) + "," +
             CsvText(Str(k["metric"])) + "," + FormatNumber(Num(k["start"])) + "," +
             FormatNumber(Num(k["target"])) + "," + CsvText(Str(k["unit"])) + "," +
             (last.is_object() ? FormatNumber(Num(k["current"])) : "") + "," +
             CsvText(last.is_object() ? Str(last["measured_at"]).substr(0, 10) : "") + "," +
             CsvText(OwnOwner(k, o)) + "," + FormatNumber(Num(k["weight"])) + "," + description +
             "\r\n";
    }
  }
  return out;
}

// The units, parents first. An erased person (SPEC §10) says so, as
// okrd's answer does.
ordered_json UnitsJson(const ExportInput& in) {
  ordered_json units = ordered_json::array();
  for (const json* up : UnitsInTreeOrder(in.units)) {
    const json& u = *up;
    ordered_json unit = {{"id", Str(u["id"])}, {"kind", Str(u["kind"])}, {"name", Str(u["name"])}};
    if (u["parent"].is_string()) unit["parent"] = Str(u["parent"]);
    if (u.contains("email") && u["email"].is_string()) unit["email"] = Str(u["email"]);
    if (u.value("erased", false)) {
      unit["name"] = nullptr;
      unit["erased"] = true;
    }
    units.push_back(std::move(unit));
  }
  return units;
}

std::string RenderJson(const ExportInput& in) {
  ordered_json doc;
  doc["format"] = "okrd-okrs";
  doc["version"] = 1;
  doc["units"] = UnitsJson(in);
  ordered_json cycles = ordered_json::array();
  for (const json& c : in.cycles) {
    ordered_json cycle = {{"id", Str(c["id"])},
                          {"name", Str(c["name"])},
                          {"starts", Str(c["starts"])},
                          {"ends", Str(c["ends"])}};
    if (c["parent"].is_string()) cycle["parent"] = Str(c["parent"]);
    cycle["state"] = Str(c["state"]);
    cycles.push_back(std::move(cycle));
  }
  doc["cycles"] = std::move(cycles);
  ordered_json objectives = ordered_json::array();
  for (const json* op : ObjectivesInAlignmentOrder(in.objectives)) {
    const json& o = *op;
    ordered_json objective = {{"id", Str(o["id"])},
                              {"cycle", Str(o["cycle"])},
                              {"owner", Str(o["owner"])},
                              {"title", Str(o["title"])},
                              {"description", Str(o["description"])}};
    ordered_json parents = ordered_json::array();
    for (const json& p : o["parents"]) parents.push_back(Str(p));
    objective["parents"] = std::move(parents);
    ordered_json krs = ordered_json::array();
    for (const json& k : o["key_results"]) {
      ordered_json kr = {{"id", Str(k["id"])}, {"title", Str(k["title"])}};
      if (std::string owner = OwnOwner(k, o); !owner.empty()) kr["owner"] = owner;
      kr["metric"] = Str(k["metric"]);
      kr["start"] = Num(k["start"]);
      kr["target"] = Num(k["target"]);
      kr["unit"] = Str(k["unit"]);
      kr["weight"] = Num(k["weight"]);
      ordered_json series = ordered_json::array();
      if (auto it = in.check_ins.find(Str(k["id"])); it != in.check_ins.end()) {
        for (const json& ci : it->second) {
          ordered_json c = {{"id", Str(ci["id"])}, {"value", Num(ci["value"])}};
          if (ci["confidence"].is_number()) c["confidence"] = Num(ci["confidence"]);
          if (ci["status"].is_string()) c["status"] = Str(ci["status"]);
          c["note"] = Str(ci["note"]);
          if (ci.value("erased", false)) {
            c["note"] = nullptr;
            c["erased"] = true;
          }
          c["measured_at"] = Str(ci["measured_at"]);
          series.push_back(std::move(c));
        }
      }
      kr["check_ins"] = std::move(series);
      krs.push_back(std::move(kr));
    }
    objective["key_results"] = std::move(krs);
    objectives.push_back(std::move(objective));
  }
  doc["objectives"] = std::move(objectives);
  return doc.dump(2, ' ', false, ordered_json::error_handler_t::strict) + "\n";
}

}  // namespace okr::ctl
