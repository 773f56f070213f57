// The log's Merkle tree over HTTP (SPEC §7, docs/API.md "Proofs"): the
// verifier key, signed checkpoints and inclusion and consistency proofs.
// Hashes only, never event content, so readers may ask. Every answer for
// a given size is fixed forever; its ETag is that size (StateTag).
#include <cassert>
#include <string>

#include "api/handler.h"
#include "api/log_key.h"
#include "eventstore/event_json.h"

namespace okr::api {

using nlohmann::json;

namespace {

std::string HashBase64(const Hash& hash) {
  return Base64Encode(std::string_view(reinterpret_cast<const char*>(hash.data()), hash.size()));
}

json HashesJson(const std::vector<Hash>& hashes) {
  json out = json::array();
  for (const Hash& h : hashes) out.push_back(HashBase64(h));
  return out;
}

constexpr char kNoKey[] =
    "this okrd serves the log without its signing key (--read-only-forensics without the key "
    "file the log records): no checkpoints";

}  // namespace

// The tree size or seq parameter `name`, from `min` to `max`: `fallback`
// when absent (none: required); `store_head` names the head in a refusal. Answers 422 naming it and
// returns nullopt on anything else — a sign, an exponent, a byte that is no digit, a number beyond
// 2^64 — so a refused request reads nothing.
static std::optional<uint64_t> TreeParam(Call& c, const char* name, uint64_t min, uint64_t max,
                                         std::optional<uint64_t> fallback, uint64_t store_head) {
  const std::string* text = c.Param(name);
  if (text == nullptr && fallback) return fallback;
  std::optional<uint64_t> v = text ? ParseUnsigned(*text) : std::nullopt;
  if (!v || *v < min || *v > max) {
    std::string message =
        min > max
            ? std::string(name) + ": the log has too few events (its head is seq " +
                  std::to_string(store_head) + ")"
            : std::string(name) + (text ? " must be" : " is required:") + " a whole number from " +
                  std::to_string(min) + " to " + std::to_string(max);
    c.Fail(ApiError{422, "invalid", message, name});
    return std::nullopt;
  }
  assert(*v >= min && *v <= max);
  return v;
}

// The size an answer of `route` is for, as its ETag names it, read
// before the answer (AnswerSeq): the size= or to= given, else the head.
// nullopt when that parameter is not a size the log has.
std::optional<uint64_t> Server::Routes::PinnedTreeSize(const Call& c, const Route& route) {
  const char* name = route.kind == RouteKind::kConsistencyProof ? "to" : "size";
  const uint64_t head = store_->head().seq;
  auto it = c.req.params.find(name);
  if (it == c.req.params.end()) return head;
  std::optional<uint64_t> size = ParseUnsigned(it->second);
  if (!size || *size == 0 || *size > head) return std::nullopt;
  return size;
}

Result<std::string> Server::Routes::SignedNote(uint64_t size, Hash* root) {
  assert(options_.signing_key != nullptr);
  OKR_ASSIGN_OR_RETURN(*root, store_->TreeRoot(size));
  return options_.signing_key->Sign(Checkpoint{options_.origin, size, *root});
}

Result<json> Server::Routes::CheckpointJson(uint64_t size) {
  if (options_.replica) return KeptCheckpointJson(size);
  if (options_.signing_key == nullptr) return json(nullptr);
  Hash root{};
  OKR_ASSIGN_OR_RETURN(std::string note, SignedNote(size, &root));
  return json{{"note", std::move(note)}, {"root", HashBase64(root)}, {"size", size}};
}

// A replica signs nothing (SPEC §9): the primary's newest checkpoint it
// keeps, when that covers `size`. Of that very size it is the primary's
// own answer, byte for byte; of a larger one it carries the consistency
// proof from `size` and that tree's root, so the reader can tie this
// review's state to the signed tree. Null while none covers `size`.
Result<json> Server::Routes::KeptCheckpointJson(uint64_t size) {
  auto kept = options_.replica->checkpoint();
  if (!kept || size == 0 || kept->size < size) return json(nullptr);
  json out = {{"note", kept->note}, {"root", HashBase64(kept->root)}, {"size", kept->size}};
  if (kept->size == size) return out;
  OKR_ASSIGN_OR_RETURN(Hash from_root, store_->TreeRoot(size));
  OKR_ASSIGN_OR_RETURN(std::vector<Hash> proof, store_->ConsistencyProof(size, kept->size));
  out["consistency"] = {
      {"from", size}, {"from_root", HashBase64(from_root)}, {"hashes", HashesJson(proof)}};
  return out;
}

void Server::Routes::TagReview(Call& c, uint64_t as_of, const json& checkpoint) {
  if (!options_.replica) return c.TagState(as_of);
  c.uncacheable = true;
  // "0.<as_of>" without a checkpoint, "<as_of>" (the primary's) with one
  // of that size, "<size>.<as_of>" with a larger one.
  const uint64_t size = checkpoint.is_object() ? checkpoint["size"].get<uint64_t>() : 0;
  c.TagState(as_of, size == as_of ? std::nullopt : std::optional<uint64_t>(size));
}

void Server::Routes::GetLogKey(Call& c) {
  if (options_.replica) {
    // The primary's key, as the log this replica copied records it.
    auto recorded = FindRecordedKey(*store_);
    if (!recorded.ok()) return c.Fail(recorded.status());
    if (!*recorded) return c.Fail(503, "this replica has not yet copied the log's key");
    c.res.status = 200;
    return c.res.set_content((*recorded)->verifier.vkey() + "\n", "text/plain; charset=utf-8");
  }
  if (options_.signing_key == nullptr) return c.Fail(503, kNoKey);
  c.res.status = 200;
  c.res.set_content(options_.signing_key->Verifier(options_.origin).vkey() + "\n",
                    "text/plain; charset=utf-8");
}

// A checkpoint of the head when no size is given (the empty tree's too);
// a size given must be one the log has had, 1 to the head.
void Server::Routes::GetCheckpoint(Call& c) {
  const uint64_t head = store_->head().seq;
  auto size = TreeParam(c, "size", 1, head, head, head);
  if (!size) return;
  if (options_.replica) return ServeKeptCheckpoint(c, c.req.has_param("size") ? *size : 0);
  if (options_.signing_key == nullptr) return c.Fail(503, kNoKey);
  Hash root{};
  auto note = SignedNote(*size, &root);
  if (!note.ok()) return c.Fail(note.status());
  c.res.status = 200;
  c.res.set_content(std::move(note.value()), "text/plain; charset=utf-8");
  c.TagState(*size);
}

void Server::Routes::GetInclusionProof(Call& c) {
  const uint64_t head = store_->head().seq;
  auto size = TreeParam(c, "size", 1, head, head, head);
  if (!size) return;
  auto seq = TreeParam(c, "seq", 1, *size, std::nullopt, head);
  if (!seq) return;
  auto leaf = store_->LeafHash(*seq);
  if (!leaf.ok()) return c.Fail(leaf.status());
  auto proof = store_->InclusionProof(*seq, *size);
  if (!proof.ok()) return c.Fail(proof.status());
  c.Send(200, json{{"hashes", HashesJson(*proof)},
                   {"leaf_hash", HashBase64(*leaf)},
                   {"seq", *seq},
                   {"size", *size}});
  c.TagState(*size);
}

void Server::Routes::GetConsistencyProof(Call& c) {
  const uint64_t head = store_->head().seq;
  auto to = TreeParam(c, "to", 1, head, std::nullopt, head);
  if (!to) return;
  auto from = TreeParam(c, "from", 1, *to, std::nullopt, head);
  if (!from) return;
  auto proof = store_->ConsistencyProof(*from, *to);
  if (!proof.ok()) return c.Fail(proof.status());
  c.Send(200, json{{"from", *from}, {"hashes", HashesJson(*proof)}, {"to", *to}});
  c.TagState(*to);
}

}  // namespace okr::api
