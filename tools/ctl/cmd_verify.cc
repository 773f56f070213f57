// okrctl verify: the hash chain of a data directory (and with --deep its
// snapshots), or of a running okrd from the stored bytes it serves.
#include <cassert>
#include <future>
#include <iostream>
#include <optional>

#include "eventstore/chain.h"
#include "tools/ctl/cmd_common.h"
#include "tools/ctl/progress.h"
#include "tools/ctl/raw_events.h"
#include "tools/ctl/snapshot_check.h"

namespace okr::ctl::cmd {
namespace {

using nlohmann::json;

// {ok, events, head_hash, first_bad_seq[, problem]}: `ok` may be stricter
// than the chain's own verdict (snapshots, okrd's claim).
json ReportJson(const VerifyReport& report, bool ok) {
  json out = {{"ok", ok},
              {"events", report.events},
              {"head_hash", ToHex(report.head_hash)},
              {"first_bad_seq", report.ok ? json(nullptr) : json(report.first_bad_seq)}};
  if (!report.ok) out["problem"] = report.problem;
  return out;
}

// --- offline ---

// --deep: every stored snapshot against a full replay of the log, after
// the chain passed (a broken chain is reported on its own).
Result<SnapshotCheckReport> VerifySnapshots(const EventStore& store, bool json_out) {
  ProgressBar bar("replaying for each snapshot", 0, Interactive(json_out), "snapshots");
  auto report = CheckSnapshots(store, [&](size_t done, size_t total) {
    bar.set_total(total);
    bar.Update(done);
  });
  bar.Finish();
  return report;
}

json SnapshotsJson(const SnapshotCheckReport& r) {
  json out = {{"ok", r.ok},
              {"seqs", r.seqs},
              {"checked", r.checked},
              {"first_bad_seq", r.ok ? json(nullptr) : json(r.first_bad_seq)}};
  if (!r.ok) out["problem"] = r.problem;
  return out;
}

std::string SnapshotsText(const SnapshotCheckReport& r) {
  if (!r.ok) {
    return "SNAPSHOT at seq " + std::to_string(r.first_bad_seq) +
           " differs from a full replay of the log: " + r.problem +
           " (snapshots are a cache okrd starts from; the log itself verifies)\n";
  }
  std::string seqs;
  for (uint64_t seq : r.seqs) seqs += (seqs.empty() ? "" : ", ") + std::to_string(seq);
  return "snapshots: " + std::to_string(r.checked) + " agree with a full replay of the log" +
         (seqs.empty() ? "" : " (seq " + seqs + ")") + "\n";
}

void PrintOffline(const VerifyReport& report, const std::optional<SnapshotCheckReport>& snapshots,
                  double secs, bool json_out) {
  // Snapshots are checked only on an intact chain.
  assert(!snapshots || report.ok);
  const bool ok = report.ok && (!snapshots || snapshots->ok);
  if (json_out) {
    json out = ReportJson(report, ok);
    if (snapshots) out["snapshots"] = SnapshotsJson(*snapshots);
    std::cout << out.dump() << "\n";
  } else if (report.ok) {
    std::cout << "ok: " << report.events << " events, head hash " << ToHex(report.head_hash) << " ("
              << secs << " s)\n";
    if (snapshots) std::cout << SnapshotsText(*snapshots);
  } else {
    std::cout << "BROKEN at seq " << report.first_bad_seq << ": " << report.problem << " ("
              << report.events << " events before it verify)\n";
  }
}

// --- through okrd ---

// What okrd's GET /v1/audit/verify says of its own chain.
struct ServerClaim {
  bool ok = false;
  uint64_t events = 0;
  std::string head_hash;
  uint64_t first_bad_seq = 0;
  std::string problem;
};

ServerClaim ClaimOf(json audit) {
  ServerClaim claim;
  claim.ok = audit.value("ok", false);
  claim.events = audit.value("events", uint64_t{0});
  claim.head_hash = Str(audit["head_hash"]);
  // first_bad_seq is null on a healthy chain: read only on a broken one.
  if (!claim.ok) {
    claim.first_bad_seq = audit.value("first_bad_seq", uint64_t{0});
    claim.problem = Str(audit["problem"]);
  }
  return claim;
}

// The log's head before okrd's own check starts, which that check then
// covers (the log only grows): what okrctl fetches while okrd re-hashes.
Result<uint64_t> HeadNow(Client& client) {
  HttpAnswer health = client.Get("/healthz");
  if (!health.ok()) return Status::IOError("GET /healthz: " + health.Describe());
  return health.json.value("head_seq", uint64_t{0});
}

// Where the check stops: a healthy log up to what okrd verified (events
// appended meanwhile are not its claim), a broken one up to its head.
Result<uint64_t> CheckUpTo(Client& client, const ServerClaim& claim) {
  if (claim.ok) return claim.events;
  return HeadNow(client);
}

// The chain recomputed from the stored bytes okrd serves: every value is
// decoded and hashed here, never taken from okrd's JSON. okrd's own check
// (GET /v1/audit/verify, a full re-hash) runs on a second connection
// meanwhile, so a verify waits for the longer of the two, not their sum;
// the events okrd's claim covers beyond `head` are fetched after it.
struct ServedCheck {
  VerifyReport report;
  ServerClaim claim;
  uint64_t up_to = 0;
};

Result<ServedCheck> CheckServedChain(const std::string& url, Client& client, bool json_out) {
  auto audit_client = Connect(url);
  if (!audit_client.ok()) return audit_client.status();
  OKR_ASSIGN_OR_RETURN(const uint64_t head, HeadNow(client));
  std::future<HttpAnswer> audit = std::async(
      std::launch::async, [c = audit_client->get()] { return c->Get("/v1/audit/verify"); });
  okr::ChainChecker chain(okr::ChainSource::kServed);
  ProgressBar bar("verifying", head, Interactive(json_out), "events");
  auto add = [&](uint64_t seq, std::string_view bytes) { return chain.Add(seq, bytes); };
  auto progress = [&](uint64_t seq) { bar.Update(seq); };
  Status fetched = FetchRawEvents(client, head, add, progress);
  HttpAnswer answer = audit.get();
  if (!answer.ok()) return Status::IOError("GET /v1/audit/verify: " + answer.Describe());
  OKR_RETURN_IF_ERROR(fetched);
  ServedCheck out;
  out.claim = ClaimOf(answer.json);
  OKR_ASSIGN_OR_RETURN(out.up_to, CheckUpTo(client, out.claim));
  if (chain.report().ok && chain.report().events == head && out.up_to > head) {
    bar.set_total(out.up_to);
    OKR_RETURN_IF_ERROR(FetchRawEvents(client, out.up_to, add, progress, head));
  }
  bar.Finish();
  out.report = chain.report();
  return out;
}

// The recomputed chain must reach `up_to` and agree with okrd's claim;
// the first disagreement becomes the report's problem.
void Reconcile(const ServerClaim& claim, uint64_t up_to, VerifyReport* report) {
  if (report->ok && report->events != up_to) {
    report->ok = false;
    report->first_bad_seq = report->events + 1;
    report->problem = "okrd served " + std::to_string(report->events) + " events but claims " +
                      std::to_string(up_to);
  }
  bool hash_matches = report->ok && claim.ok && ToHex(report->head_hash) == claim.head_hash;
  if (report->ok && claim.ok && !hash_matches) {
    report->ok = false;
    report->first_bad_seq = report->events;
    report->problem =
        "the head hash computed from the stored bytes differs from okrd's " + claim.head_hash;
  }
  if (report->ok && !claim.ok) {
    // okrd's own check sees more than the events (the head record).
    report->ok = false;
    report->first_bad_seq = claim.first_bad_seq;
    report->problem = "okrd's own check fails: " + claim.problem;
  }
  // What remains ok matches okrd's claim in full.
  assert(!report->ok || (claim.ok && report->events == up_to));
}

void PrintServer(const VerifyReport& report, const ServerClaim& claim, double secs, bool json_out) {
  if (json_out) {
    json out = ReportJson(report, report.ok);
    out["server"] = {{"ok", claim.ok}, {"events", claim.events}, {"head_hash", claim.head_hash}};
    std::cout << out.dump() << "\n";
  } else if (report.ok) {
    std::cout << "ok: " << report.events << " events checked from their stored bytes, head hash "
              << ToHex(report.head_hash) << " (matches okrd's /v1/audit/verify; " << secs
              << " s)\n";
  } else {
    std::cout << "BROKEN at seq " << report.first_bad_seq << ": " << report.problem << "\n";
    std::cout << "okrd's own check: "
              << (claim.ok ? std::string("claims the chain is intact")
                           : "broken at seq " + std::to_string(claim.first_bad_seq))
              << "\n";
  }
}

}  // namespace

int VerifyOffline(const std::string& dir, bool json_out, bool deep) {
  auto store = OpenForReading(dir);
  if (!store.ok()) return Fail("cannot open " + dir + ": " + store.status().ToString());
  auto started = SteadyClock::now();
  VerifyReport report = VerifyWithProgress(**store, json_out);
  std::optional<SnapshotCheckReport> snapshots;
  if (deep && report.ok) {
    auto checked = VerifySnapshots(**store, json_out);
    if (!checked.ok()) return Fail("checking snapshots: " + checked.status().ToString());
    snapshots = std::move(checked.value());
  }
  PrintOffline(report, snapshots, SecondsSince(started), json_out);
  return report.ok && (!snapshots || snapshots->ok) ? kExitOk : kExitFailed;
}

int VerifyServer(const std::string& url, bool json_out) {
  auto client = Connect(url);
  if (!client.ok()) return Usage(client.status().message());
  auto started = SteadyClock::now();
  auto checked = CheckServedChain(url, **client, json_out);
  if (!checked.ok()) return Fail(checked.status().message());
  Reconcile(checked->claim, checked->up_to, &checked->report);
  PrintServer(checked->report, checked->claim, SecondsSince(started), json_out);
  return checked->report.ok ? kExitOk : kExitFailed;
}

}  // namespace okr::ctl::cmd
