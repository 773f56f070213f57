// okrctl audit: checks what a running okrd signed against what this
// auditor trusted before (SPEC §7, docs/OPERATIONS.md "Auditing the log").
//
// Every finding is a failed Status whose message starts with its name —
// "rollback", "fork", "bad signature", "bad consistency proof", "bad
// inclusion proof", "chain broken at seq K", "event K changed" — and the
// command exits 1 with it; the trusted state is written only after every
// check passed.
#include <algorithm>
#include <cassert>
#include <iostream>
#include <optional>

#include "eventstore/chain.h"
#include "eventstore/checkpoint.h"
#include "eventstore/event_json.h"
#include "eventstore/merkle.h"
#include "tools/ctl/audit_state.h"
#include "tools/ctl/cmd_common.h"
#include "tools/ctl/progress.h"
#include "tools/ctl/raw_events.h"

namespace okr::ctl::cmd {
namespace {

using merkle::Hash;
using nlohmann::json;

std::string B64(const Hash& h) {
  return Base64Encode(std::string_view(reinterpret_cast<const char*>(h.data()), h.size()));
}

// A signed checkpoint as served and as verified.
struct SignedCheckpoint {
  std::string note;
  Checkpoint body;
};

// GET /v1/log/checkpoint (of `size` when given), verified with `key`.
Result<SignedCheckpoint> FetchCheckpoint(Client& client, const NoteVerifier& key,
                                         std::optional<uint64_t> size = std::nullopt) {
  const std::string path = "/v1/log/checkpoint" + (size ? "?size=" + std::to_string(*size) : "");
  HttpAnswer a = client.Get(path);
  if (!a.ok()) return Status::IOError("GET " + path + ": " + a.Describe());
  auto body = VerifyCheckpoint(a.body, key);
  if (!body.ok()) return Status::Corruption("bad signature: " + body.status().message());
  if (size && body->size != *size) {
    return Status::Corruption("bad signature: asked for size " + std::to_string(*size) +
                              ", okrd signed size " + std::to_string(body->size));
  }
  return SignedCheckpoint{std::move(a.body), std::move(body.value())};
}

// The "hashes" of a proof answer, each base64 of 32 bytes.
Result<std::vector<Hash>> ProofHashes(const HttpAnswer& a, const std::string& what) {
  if (!a.json.is_object() || !a.json.contains("hashes") || !a.json["hashes"].is_array()) {
    return Status::Corruption("bad " + what + ": the answer has no hashes");
  }
  std::vector<Hash> out;
  for (const json& h : a.json["hashes"]) {
    auto bytes = h.is_string() ? Base64Decode(h.get<std::string>()) : std::nullopt;
    if (!bytes || bytes->size() != Hash{}.size()) {
      return Status::Corruption("bad " + what + ": a hash is not base64 of 32 bytes");
    }
    std::copy(bytes->begin(), bytes->end(), out.emplace_back().begin());
  }
  return out;
}

Result<std::vector<Hash>> FetchProof(Client& client, const std::string& path,
                                     const std::string& what) {
  HttpAnswer a = client.Get(path);
  if (!a.ok()) return Status::IOError("GET " + path + ": " + a.Describe());
  return ProofHashes(a, what);
}

// The events after the trusted size, as served: their leaf hashes, the
// chain's verdict, the last one's recordedAt, and the log.signing_key
// events among them.
struct NewEvents {
  std::vector<Hash> leaves;
  VerifyReport chain;
  int64_t last_recorded_at_us = 0;
  uint64_t key_seq = 0;     // the last log.signing_key event seen; 0: none
  std::string key_problem;  // the first one recording another key than --key
};

// Notes event `seq` in `out` when it is a log.signing_key event: the log
// itself names the key that signs it (SPEC §7), so on a first run it pins
// --key to the log, and later it catches a key okrd was given since. A
// value that does not decode is left to the chain check.
void LookForKeyEvent(EventScratch& scratch, const NoteVerifier& key, uint64_t seq,
                     std::string_view bytes, NewEvents* out) {
  auto ev = scratch.Read(bytes, DecodeCheck::kFramingOnly);
  if (!ev.ok()) return;
  try {
    if (ev->which() != schema::Event::LOG_SIGNING_KEY) return;
    const auto recorded = ev->getLogSigningKey();
    const auto origin = recorded.getOrigin();
    const auto public_key = recorded.getPublicKey();
    out->key_seq = seq;
    const bool same = std::string_view(origin.cStr(), origin.size()) == key.name &&
                      public_key.size() == key.public_key.size() &&
                      std::equal(public_key.begin(), public_key.end(), key.public_key.begin());
    if (!same && out->key_problem.empty()) {
      out->key_problem = "event " + std::to_string(seq) +
                         " (log.signing_key) records another key than --key " + key.vkey();
    }
  } catch (const kj::Exception&) {
    // Left to the chain check, which decodes every field.
  }
}

// Fetches events m+1..n (raw bytes), checks their chain resumed after the
// trusted event m (from seq 1 on a first run) and hashes each into a leaf.
Result<NewEvents> FetchNewEvents(Client& client, const NoteVerifier& key,
                                 const std::optional<AuditState>& trusted, uint64_t n) {
  const uint64_t m = trusted ? trusted->size : 0;
  std::optional<ChainChecker> chain;
  if (trusted) {
    chain.emplace(ChainSource::kServed,
                  ChainResume{m, trusted->last_hash, trusted->last_recorded_at_us});
  } else {
    chain.emplace(ChainSource::kServed);
  }
  NewEvents out;
  out.leaves.reserve(n - m);
  std::string last;
  EventScratch scratch;
  ProgressBar bar("fetching events", n - m, Interactive(false), "events");
  Status fetched = FetchRawEvents(
      client, n,
      [&](uint64_t seq, std::string_view bytes) {
        chain->Add(seq, bytes);  // a broken chain is reported after the tree
        out.leaves.push_back(merkle::LeafHash(bytes));
        LookForKeyEvent(scratch, key, seq, bytes, &out);
        last.assign(bytes);
        return true;
      },
      [&](uint64_t seq) { bar.Update(seq - m); }, m);
  bar.Finish();
  OKR_RETURN_IF_ERROR(fetched);
  if (out.leaves.size() != n - m) {
    return Status::Corruption("chain broken at seq " + std::to_string(m + out.leaves.size() + 1) +
                              ": okrd signed a tree of " + std::to_string(n) +
                              " events but serves only " + std::to_string(m + out.leaves.size()));
  }
  out.chain = chain->report();
  if (auto decoded = DecodedEvent::Decode(last); decoded.ok()) {
    out.last_recorded_at_us = (*decoded)->event().getRecordedAt();
  }
  return out;
}

// The trusted tree's right edge (empty on a first run) extended by the
// first `count` new leaves.
merkle::Frontier Extended(const std::optional<AuditState>& trusted, const std::vector<Hash>& leaves,
                          size_t count) {
  merkle::Frontier frontier;
  if (trusted) {
    const bool loaded = merkle::Frontier::FromPeaks(trusted->size, trusted->peaks, &frontier);
    assert(loaded && "the state's peaks were checked when it was loaded");
    (void)loaded;
  }
  for (size_t i = 0; i < count; ++i) frontier.Append(leaves[i], nullptr);
  return frontier;
}

// The new leaves' root differs from the signed one at size n: the first
// size whose signed root differs from the served bytes' names the changed
// event (a binary search over signed checkpoints, O(log n) requests), and
// its inclusion proof in the signed tree of n is checked to fail.
Status LocateChangedEvent(Client& client, const NoteVerifier& key,
                          const std::optional<AuditState>& trusted, const NewEvents& events,
                          const SignedCheckpoint& signed_n) {
  const uint64_t m = trusted ? trusted->size : 0, n = signed_n.body.size;
  uint64_t agree = m, differ = n;  // the signed and served roots at those sizes
  while (differ - agree > 1) {
    const uint64_t mid = agree + (differ - agree) / 2;
    OKR_ASSIGN_OR_RETURN(SignedCheckpoint at, FetchCheckpoint(client, key, mid));
    const bool same = Extended(trusted, events.leaves, mid - m).Root() == at.body.root;
    (same ? agree : differ) = mid;
  }
  const uint64_t k = differ;
  OKR_ASSIGN_OR_RETURN(
      std::vector<Hash> proof,
      FetchProof(client,
                 "/v1/log/proof/inclusion?seq=" + std::to_string(k) + "&size=" + std::to_string(n),
                 "inclusion proof"));
  const bool included =
      merkle::VerifyInclusion(k - 1, n, events.leaves[k - m - 1], proof, signed_n.body.root);
  return Status::Corruption("event " + std::to_string(k) +
                            " changed: the bytes okrd serves for seq " + std::to_string(k) +
                            " do not match the signed tree of size " + std::to_string(n) +
                            (included ? " (yet its inclusion proof verifies)"
                                      : " (its inclusion proof fails; the signed roots agree "
                                        "with the served bytes up to size " +
                                            std::to_string(k - 1) + ")"));
}

// One run of the audit: what it was given and what it trusts.
struct AuditRun {
  Client& client;
  NoteVerifier key;
  std::string server, state_path;
  std::optional<AuditState> trusted;
};

// Two signed checkpoints for size `size`: both notes kept as evidence.
Status Fork(const AuditRun& run, uint64_t size, const std::string& trusted_note,
            const SignedCheckpoint& served) {
  assert(run.trusted && served.body.size == size && served.body.root != run.trusted->root);
  std::string path;
  Status kept =
      KeepForkEvidence(run.state_path, {run.server, size, trusted_note, served.note}, &path);
  return Status::Corruption(
      "fork: two signed checkpoints for size " + std::to_string(size) +
      " with different roots (trusted " + B64(run.trusted->root) + ", okrd now signs " +
      B64(served.body.root) + "); " +
      (kept.ok() ? "both notes kept in " + path : "keeping them failed: " + kept.message()));
}

// The consistency proof from the trusted size failed: okrd either signs
// another root for that size now (a fork) or answered a bad proof.
Status ConsistencyFailed(const AuditRun& run, const SignedCheckpoint& now) {
  const AuditState& t = *run.trusted;
  const std::string what = "bad consistency proof from the trusted size " + std::to_string(t.size) +
                           " to " + std::to_string(now.body.size);
  auto at_m = FetchCheckpoint(run.client, run.key, t.size);
  if (!at_m.ok()) return Status::Corruption(what + " (and " + at_m.status().message() + ")");
  if (at_m->body.root != t.root) return Fork(run, t.size, t.note, *at_m);
  return Status::Corruption(what);
}

// okrd's checkpoint `now` against the trusted one: no rollback, no fork,
// and a consistency proof from the trusted size when the log grew.
Status CheckAgainstTrusted(const AuditRun& run, const SignedCheckpoint& now) {
  const AuditState& t = *run.trusted;
  const uint64_t m = t.size, n = now.body.size;
  if (n < m) {
    return Status::Corruption("rollback: the server's checkpoint is at size " + std::to_string(n) +
                              ", below the trusted " + std::to_string(m));
  }
  if (n == m) {
    return now.body.root == t.root ? Status::Ok() : Fork(run, m, t.note, now);
  }
  const std::string path =
      "/v1/log/proof/consistency?from=" + std::to_string(m) + "&to=" + std::to_string(n);
  auto proof = FetchProof(run.client, path, "consistency proof");
  if (!proof.ok() && proof.status().code() != Status::Code::kCorruption) return proof.status();
  if (proof.ok() && merkle::VerifyConsistency(m, n, t.root, now.body.root, *proof)) {
    return Status::Ok();
  }
  return ConsistencyFailed(run, now);
}

// Events m+1..n: their chain, the tree they make with the trusted edge,
// and the inclusion of the last one in the signed tree.
Result<NewEvents> CheckNewEvents(const AuditRun& run, const SignedCheckpoint& now) {
  const uint64_t m = run.trusted ? run.trusted->size : 0, n = now.body.size;
  assert(n > m);
  OKR_ASSIGN_OR_RETURN(NewEvents events, FetchNewEvents(run.client, run.key, run.trusted, n));
  if (Extended(run.trusted, events.leaves, n - m).Root() != now.body.root) {
    return LocateChangedEvent(run.client, run.key, run.trusted, events, now);
  }
  if (!events.chain.ok) {
    return Status::Corruption("chain broken at seq " + std::to_string(events.chain.first_bad_seq) +
                              ": " + events.chain.problem);
  }
  if (!events.key_problem.empty()) return Status::Corruption("bad key: " + events.key_problem);
  if (!run.trusted && events.key_seq == 0) {
    return Status::Corruption("bad key: the log records no log.signing_key event to pin --key to");
  }
  const std::string seq = std::to_string(n);
  OKR_ASSIGN_OR_RETURN(std::vector<Hash> proof,
                       FetchProof(run.client, "/v1/log/proof/inclusion?seq=" + seq + "&size=" + seq,
                                  "inclusion proof"));
  if (!merkle::VerifyInclusion(n - 1, n, events.leaves.back(), proof, now.body.root)) {
    return Status::Corruption("bad inclusion proof: seq " + seq + " in the signed tree of size " +
                              seq);
  }
  return events;
}

AuditState NewState(const AuditRun& run, const SignedCheckpoint& now, const NewEvents& events) {
  AuditState s;
  s.origin = run.key.name;
  s.vkey = run.key.vkey();
  s.size = now.body.size;
  s.root = now.body.root;
  s.note = now.note;
  s.peaks = Extended(run.trusted, events.leaves, events.leaves.size()).peaks();
  s.last_hash = events.chain.head_hash;
  s.last_recorded_at_us = events.last_recorded_at_us;
  assert(events.chain.ok && events.chain.events == s.size);
  return s;
}

// The trusted state and --key must name the same key.
Status CheckStateKey(const AuditRun& run) {
  const AuditState& t = *run.trusted;
  if (t.vkey != run.key.vkey()) {
    return Status::Invalid(run.state_path + " trusts the key " + t.vkey + ", not --key " +
                           run.key.vkey());
  }
  merkle::Frontier edge;
  if (!merkle::Frontier::FromPeaks(t.size, t.peaks, &edge) || edge.Root() != t.root) {
    return Status::Invalid(run.state_path + ": its peaks do not make its root at size " +
                           std::to_string(t.size));
  }
  return Status::Ok();
}

void PrintOutcome(const AuditRun& run, const SignedCheckpoint& now, uint64_t checked,
                  uint64_t key_seq) {
  const Checkpoint& c = now.body;
  if (!run.trusted) {
    std::cout << "trusted on first use: log " << c.origin << ", size " << c.size << ", root "
              << B64(c.root) << ", key " << run.key.vkey() << " (recorded by the log at seq "
              << key_seq << "); " << checked << " events checked; saved to " << run.state_path
              << "\n";
  } else if (checked == 0) {
    std::cout << "ok: size " << c.size << ", no new events; okrd signs the trusted root\n";
  } else {
    std::cout << "ok: size " << run.trusted->size << " -> " << c.size << ", " << checked
              << " new events checked (consistency, chain, tree, inclusion of seq " << c.size
              << "); saved to " << run.state_path << "\n";
  }
}

Status RunAudit(AuditRun& run) {
  if (run.trusted) OKR_RETURN_IF_ERROR(CheckStateKey(run));
  OKR_ASSIGN_OR_RETURN(SignedCheckpoint now, FetchCheckpoint(run.client, run.key));
  const uint64_t m = run.trusted ? run.trusted->size : 0;
  if (run.trusted) OKR_RETURN_IF_ERROR(CheckAgainstTrusted(run, now));
  if (now.body.size == 0) return Status::Invalid("the log is empty: nothing to trust yet");
  if (now.body.size == m) {
    PrintOutcome(run, now, 0, 0);
    return Status::Ok();
  }
  OKR_ASSIGN_OR_RETURN(NewEvents events, CheckNewEvents(run, now));
  OKR_RETURN_IF_ERROR(WriteFileAtomically(
      run.state_path, AuditStateJson(NewState(run, now, events)).dump(2) + "\n"));
  PrintOutcome(run, now, events.leaves.size(), events.key_seq);
  return Status::Ok();
}

}  // namespace

int Audit(const std::string& url, const std::string& key_arg, const std::string& state_path) {
  auto text = VkeyArgument(key_arg);
  if (!text.ok()) return Usage(text.status().message());
  auto key = ParseVkey(*text);
  if (!key.ok()) return Usage("--key: " + key.status().message());
  auto trusted = LoadAuditState(state_path);
  if (!trusted.ok()) return Fail(trusted.status().message());
  auto client = Connect(url);
  if (!client.ok()) return Usage(client.status().message());
  AuditRun run{**client, std::move(key.value()), url, state_path, std::move(trusted.value())};
  Status audited = RunAudit(run);
  return audited.ok() ? kExitOk : Fail(audited.message());
}

}  // namespace okr::ctl::cmd
