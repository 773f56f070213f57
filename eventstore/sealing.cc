#include "eventstore/sealing.h"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <atomic>
#include <cassert>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <mutex>

#include "eventstore/enum_names.h"
#include "eventstore/event_codec.h"
#include "eventstore/event_json.h"
#include "eventstore/event_store.h"
#include "eventstore/keystore.h"

namespace okr {

namespace {

using W = schema::Event::Which;
using F = PersonalField;

constexpr size_t kKeyBytes = 32;
constexpr size_t kNonceBytes = 12;
constexpr size_t kTagBytes = 16;
constexpr char kTokenMagic[] =
    "\xff"
    "S";
// Key-store records (docs/FORMAT.md, "The key store"). '/' is not in an
// id, so a prefix ending in one names exactly one subject.
constexpr std::string_view kKeyPrefix = "subject-key/";
constexpr std::string_view kErasedPrefix = "subject-erased/";

std::string KeyRecord(std::string_view subject) {
  return std::string(kKeyPrefix).append(subject).append("/");
}
std::string ErasedRecord(std::string_view subject) {
  return std::string(kErasedPrefix).append(subject).append("/");
}
// The subject a record names: the key between the prefix and the last '/'.
std::string_view RecordSubject(std::string_view key, std::string_view prefix) {
  key.remove_prefix(prefix.size());
  if (!key.empty() && key.back() == '/') key.remove_suffix(1);
  return key;
}

std::string_view View(capnp::Text::Reader t) { return std::string_view(t.begin(), t.size()); }
std::string_view View(capnp::Data::Reader d) {
  return std::string_view(reinterpret_cast<const char*>(d.begin()), d.size());
}

void PutU64(std::string* out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out->push_back(static_cast<char>(v >> shift));
}
uint64_t GetU64(std::string_view in) {
  uint64_t v = 0;
  for (size_t i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(in[i]);
  return v;
}

// The associated data of one sealed field: the subject, a NUL, the seq
// (8 bytes, big-endian) and the field's ordinal (1 byte). A ciphertext
// moved to another event, field or subject no longer authenticates. In a
// buffer of the thread's, valid until its next call.
std::string_view AssociatedData(std::string_view subject, uint64_t seq, PersonalField field) {
  thread_local std::string aad;
  aad.assign(subject).push_back('\0');
  PutU64(&aad, seq);
  aad.push_back(static_cast<char>(field));
  return aad;
}

// AES-256-GCM, fetched from OpenSSL's provider once rather than at each
// use, and one cipher context per thread, reset between uses: the writer
// seals every personal text of every append.
const EVP_CIPHER* Aes256Gcm() {
  static EVP_CIPHER* cipher = EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
  return cipher;
}

struct CipherCtx {
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  ~CipherCtx() { EVP_CIPHER_CTX_free(ctx); }
};

EVP_CIPHER_CTX* ThreadCipher() {
  thread_local CipherCtx c;
  if (c.ctx != nullptr) EVP_CIPHER_CTX_reset(c.ctx);
  return c.ctx;
}

// 12 random bytes for a nonce, from a per-thread buffer filled by
// RAND_bytes 4 KiB at a time: every nonce is as random as one drawn alone,
// without a call into the generator per sealed field.
bool RandomNonce(unsigned char* nonce) {
  thread_local unsigned char pool[4096];
  thread_local size_t used = sizeof pool;
  if (used + kNonceBytes > sizeof pool) {
    if (RAND_bytes(pool, sizeof pool) != 1) return false;
    used = 0;
  }
  std::memcpy(nonce, pool + used, kNonceBytes);
  OPENSSL_cleanse(pool + used, kNonceBytes);
  used += kNonceBytes;
  return true;
}

const unsigned char* Bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

// AES-256-GCM of the `size` bytes at `in` into `out`, with `aad`; false
// when OpenSSL fails or (opening) the tag does not authenticate. The tag
// is written when sealing, read when opening.
bool Gcm(bool seal, std::string_view key, const unsigned char* nonce, std::string_view aad,
         const unsigned char* in, size_t size, unsigned char* out, unsigned char* tag) {
  assert(key.size() == kKeyBytes);
  EVP_CIPHER_CTX* ctx = ThreadCipher();
  if (ctx == nullptr || Aes256Gcm() == nullptr) return false;
  int len = 0;
  auto init = seal ? EVP_EncryptInit_ex : EVP_DecryptInit_ex;
  auto update = seal ? EVP_EncryptUpdate : EVP_DecryptUpdate;
  // 12 bytes is GCM's default IV length.
  if (init(ctx, Aes256Gcm(), nullptr, Bytes(key), nonce) != 1 ||
      update(ctx, nullptr, &len, Bytes(aad), static_cast<int>(aad.size())) != 1) {
    return false;
  }
  if (size > 0 && update(ctx, out, &len, in, static_cast<int>(size)) != 1) return false;
  if (seal) {
    return EVP_EncryptFinal_ex(ctx, out + size, &len) == 1 &&
           EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, kTagBytes, tag) == 1;
  }
  return EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, kTagBytes, tag) == 1 &&
         EVP_DecryptFinal_ex(ctx, out + size, &len) == 1;
}

std::atomic<const KeyRing*> installed_ring{nullptr};
std::atomic<const EventStore*> installed_store{nullptr};

}  // namespace

std::string_view PersonalFieldName(PersonalField field) { return EnumName(field); }

std::optional<std::string_view> BodyText(schema::Event::Reader ev, PersonalField field) {
  if (field == F::REASON) return View(ev.getReason());
  switch (ev.which()) {
    case W::UNIT_CREATED:
      if (field == F::NAME) return View(ev.getUnitCreated().getName());
      if (field == F::EMAIL) return View(ev.getUnitCreated().getEmail());
      break;
    case W::UNIT_RENAMED:
      if (field == F::BEFORE) return View(ev.getUnitRenamed().getBefore());
      if (field == F::AFTER) return View(ev.getUnitRenamed().getAfter());
      break;
    case W::UNIT_EMAIL_CHANGED:
      if (field == F::BEFORE) return View(ev.getUnitEmailChanged().getBefore());
      if (field == F::AFTER) return View(ev.getUnitEmailChanged().getAfter());
      break;
    case W::CHECK_IN_RECORDED:
      if (field == F::NOTE) return View(ev.getCheckInRecorded().getNote());
      break;
    case W::CHECK_IN_CORRECTED:
      if (field == F::NOTE) return View(ev.getCheckInCorrected().getNote());
      break;
    case W::COMMENT_ADDED:
      if (field == F::TEXT) return View(ev.getCommentAdded().getText());
      break;
    case W::OBJECTIVE_REVIEWED:
      if (field == F::REFLECTION) return View(ev.getObjectiveReviewed().getReflection());
      if (field == F::LESSONS) return View(ev.getObjectiveReviewed().getLessons());
      break;
    default:
      break;
  }
  return std::nullopt;
}

bool SetBodyText(schema::Event::Builder ev, PersonalField field, std::string_view text) {
  capnp::Text::Reader t(text.data(), text.size());
  if (field == F::REASON) {
    ev.setReason(t);
    return true;
  }
  switch (ev.which()) {
    case W::UNIT_CREATED:
      if (field == F::NAME) return ev.getUnitCreated().setName(t), true;
      if (field == F::EMAIL) return ev.getUnitCreated().setEmail(t), true;
      break;
    case W::UNIT_RENAMED:
      if (field == F::BEFORE) return ev.getUnitRenamed().setBefore(t), true;
      if (field == F::AFTER) return ev.getUnitRenamed().setAfter(t), true;
      break;
    case W::UNIT_EMAIL_CHANGED:
      if (field == F::BEFORE) return ev.getUnitEmailChanged().setBefore(t), true;
      if (field == F::AFTER) return ev.getUnitEmailChanged().setAfter(t), true;
      break;
    case W::CHECK_IN_RECORDED:
      if (field == F::NOTE) return ev.getCheckInRecorded().setNote(t), true;
      break;
    case W::CHECK_IN_CORRECTED:
      if (field == F::NOTE) return ev.getCheckInCorrected().setNote(t), true;
      break;
    case W::COMMENT_ADDED:
      if (field == F::TEXT) return ev.getCommentAdded().setText(t), true;
      break;
    case W::OBJECTIVE_REVIEWED:
      if (field == F::REFLECTION) return ev.getObjectiveReviewed().setReflection(t), true;
      if (field == F::LESSONS) return ev.getObjectiveReviewed().setLessons(t), true;
      break;
    default:
      break;
  }
  return false;
}

bool IsSealed(schema::Event::Reader ev, PersonalField field) {
  if (!ev.hasSealed()) return false;
  for (auto s : ev.getSealed()) {
    if (s.getField() == field) return true;
  }
  return false;
}

std::string StoredText(schema::Event::Reader ev, PersonalField field) {
  if (ev.hasSealed()) {
    for (auto s : ev.getSealed()) {
      if (s.getField() != field) continue;
      return SealedToken(ev.getSeq(), s);
    }
  }
  auto body = BodyText(ev, field);
  return body ? std::string(*body) : std::string();
}

std::string SealedToken(uint64_t seq, PersonalField field, std::string_view subject,
                        std::string_view box) {
  std::string raw;
  raw.reserve(8 + 1 + 1 + subject.size() + box.size());
  PutU64(&raw, seq);
  raw.push_back(static_cast<char>(field));
  // Ids are at most 64 bytes; a longer subject is cut, and then its token
  // does not open (damaged), which is what a forged one would be.
  subject = subject.substr(0, 255);
  raw.push_back(static_cast<char>(subject.size()));
  raw.append(subject).append(box);
  return std::string(kTokenMagic, 2) + Base64Encode(raw);
}

std::string SealedToken(uint64_t seq, schema::SealedText::Reader entry) {
  return SealedToken(seq, entry.getField(), View(entry.getSubject()), View(entry.getBox()));
}

bool IsSealedToken(std::string_view stored) {
  return stored.size() >= 2 && stored.compare(0, 2, kTokenMagic, 2) == 0;
}

namespace {

struct TokenParts {
  uint64_t seq = 0;
  PersonalField field = F::NAME;
  std::string_view subject, box;
};

// The token's parts; the views point into `*raw`, which holds its bytes.
std::optional<TokenParts> ParseToken(std::string_view t, std::string* raw) {
  if (!IsSealedToken(t)) return std::nullopt;
  auto decoded = Base64Decode(t.substr(2));
  if (!decoded) return std::nullopt;
  *raw = std::move(*decoded);
  std::string_view r(*raw);
  if (r.size() < 10) return std::nullopt;
  TokenParts p;
  p.seq = GetU64(r);
  p.field = static_cast<PersonalField>(static_cast<unsigned char>(r[8]));
  size_t subject_size = static_cast<unsigned char>(r[9]);
  r.remove_prefix(10);
  if (r.size() < subject_size) return std::nullopt;
  p.subject = r.substr(0, subject_size);
  p.box = r.substr(subject_size);
  return p;
}

}  // namespace

std::string SealedSubject(std::string_view stored) {
  std::string raw;
  auto p = ParseToken(stored, &raw);
  return p ? std::string(p->subject) : std::string();
}

KeyRing::KeyRing(KeyStore* store) : store_(store) {
  if (RAND_bytes(reinterpret_cast<unsigned char*>(&instance_), sizeof instance_) != 1) {
    instance_ = static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  }
}

Result<std::unique_ptr<KeyRing>> KeyRing::Open(KeyStore* store, bool read_only) {
  assert(store != nullptr);
  std::unique_ptr<KeyRing> ring(new KeyRing(store));
  OKR_RETURN_IF_ERROR(store->Scan(kKeyPrefix, [&](std::string_view key, std::string_view value) {
    if (value.size() == kKeyBytes) ring->keys_.emplace(RecordSubject(key, kKeyPrefix), value);
    return true;
  }));
  OKR_RETURN_IF_ERROR(store->Scan(kErasedPrefix, [&](std::string_view key, std::string_view) {
    ring->erased_.emplace(RecordSubject(key, kErasedPrefix));
    return true;
  }));
  std::vector<std::string> unfinished;
  for (const auto& subject : ring->erased_) {
    if (ring->keys_.count(subject)) unfinished.push_back(subject);
  }
  for (const auto& subject : unfinished) {
    if (read_only) {
      ring->Forget(subject);
    } else {
      OKR_RETURN_IF_ERROR(ring->Erase(subject));
    }
  }
  return ring;
}

Status KeyRing::Prepare(const std::vector<std::string_view>& subjects) {
  {
    std::shared_lock lock(mu_);
    std::string_view last;  // an append's fields often share a subject
    bool all = true;
    for (std::string_view s : subjects) {
      if (s == last) continue;
      if (!keys_.contains(s)) {
        all = false;
        break;
      }
      last = s;
    }
    if (all) return Status::Ok();
  }
  std::unique_lock lock(mu_);
  KeyStore::Batch batch;
  decltype(keys_) made;
  for (std::string_view subject : subjects) {
    const std::string s(subject);
    if (erased_.count(s)) {
      return Status::Conflict(
          "subject " + s + " was erased: nothing personal may be written for it again", "subject");
    }
    if (keys_.count(s) || made.count(s)) continue;
    std::string key(kKeyBytes, '\0');
    if (RAND_bytes(reinterpret_cast<unsigned char*>(key.data()), kKeyBytes) != 1) {
      return Status::IOError("no random bytes for the key of subject " + s);
    }
    batch.Put(KeyRecord(s), key);
    made.emplace(s, std::move(key));
  }
  if (made.empty()) return Status::Ok();
  OKR_RETURN_IF_ERROR(store_->Write(batch));
  keys_.merge(made);
  ++generation_;
  return Status::Ok();
}

size_t KeyRing::BoxBytes(size_t plain_bytes) { return kNonceBytes + plain_bytes + kTagBytes; }

Status KeyRing::Seal(std::string_view subject, uint64_t seq, PersonalField field,
                     std::string_view plain, kj::ArrayPtr<kj::byte> box) const {
  assert(box.size() == BoxBytes(plain.size()));
  std::shared_lock lock(mu_);
  auto it = keys_.find(subject);
  if (it == keys_.end()) {
    return Status::Conflict("subject " + std::string(subject) + " has no key", "subject");
  }
  unsigned char* nonce = box.begin();
  unsigned char* ciphertext = nonce + kNonceBytes;
  if (!RandomNonce(nonce)) return Status::IOError("no random bytes for a nonce");
  if (!Gcm(true, it->second, nonce, AssociatedData(subject, seq, field), Bytes(plain), plain.size(),
           ciphertext, ciphertext + plain.size())) {
    return Status::IOError("AES-256-GCM failed to seal");
  }
  return Status::Ok();
}

Revealed KeyRing::Open(std::string_view subject, uint64_t seq, PersonalField field,
                       std::string_view box) const {
  using S = Revealed::State;
  if (box.size() < BoxBytes(0)) return {S::kDamaged, {}};
  std::string key;
  {
    std::shared_lock lock(mu_);
    auto it = keys_.find(subject);
    if (it == keys_.end()) return {S::kErased, {}};
    key = it->second;
  }
  const size_t size = box.size() - BoxBytes(0);
  unsigned char tag[kTagBytes];
  std::memcpy(tag, box.data() + kNonceBytes + size, kTagBytes);
  Revealed out{S::kOpened, std::string(size, '\0')};
  const bool opened =
      Gcm(false, key, Bytes(box), AssociatedData(subject, seq, field), Bytes(box) + kNonceBytes,
          size, reinterpret_cast<unsigned char*>(out.text.data()), tag);
  OPENSSL_cleanse(key.data(), key.size());
  if (!opened) return {S::kDamaged, {}};
  return out;
}

Revealed KeyRing::Reveal(std::string_view stored) const {
  if (!IsSealedToken(stored)) return {Revealed::State::kPlain, std::string(stored)};
  std::string raw;
  auto p = ParseToken(stored, &raw);
  if (!p) return {Revealed::State::kDamaged, {}};
  return Open(p->subject, p->seq, p->field, p->box);
}

Status KeyRing::Erase(std::string_view subject) {
  // Out of use at once, whatever the key store does next.
  const bool marked = IsErased(subject);
  Forget(subject);
  // The mark first: an erasure cut short after it finishes at the next Open.
  if (!marked) OKR_RETURN_IF_ERROR(store_->Put(ErasedRecord(subject), ""));
  return store_->DeletePrefix(KeyRecord(subject));
}

void KeyRing::Forget(std::string_view subject) {
  std::unique_lock lock(mu_);
  const std::string s(subject);
  generation_ += erased_.insert(s).second ? 1 : 0;
  if (auto it = keys_.find(s); it != keys_.end()) {
    OPENSSL_cleanse(it->second.data(), it->second.size());
    keys_.erase(it);
  }
}

bool KeyRing::IsErased(std::string_view subject) const {
  std::shared_lock lock(mu_);
  return erased_.contains(subject);
}

std::vector<std::string> KeyRing::Subjects() const {
  std::shared_lock lock(mu_);
  std::vector<std::string> out;
  out.reserve(keys_.size());
  for (const auto& [subject, key] : keys_) out.push_back(subject);
  return out;
}

size_t KeyRing::size() const {
  std::shared_lock lock(mu_);
  return keys_.size();
}

std::string KeyRing::VersionLocked() const {
  char text[48];
  std::snprintf(text, sizeof text, "%016llx-%llu", static_cast<unsigned long long>(instance_),
                static_cast<unsigned long long>(generation_));
  return text;
}

std::string KeyRing::version() const {
  std::shared_lock lock(mu_);
  return VersionLocked();
}

KeyRing::Copy KeyRing::Export() const {
  std::shared_lock lock(mu_);
  Copy copy;
  copy.version = VersionLocked();
  copy.keys.assign(keys_.begin(), keys_.end());
  copy.erased.assign(erased_.begin(), erased_.end());
  return copy;
}

Status KeyRing::Adopt(const Copy& copy) {
  for (const std::string& subject : copy.erased) {
    if (!IsErased(subject)) OKR_RETURN_IF_ERROR(Erase(subject));
  }
  std::unique_lock lock(mu_);
  KeyStore::Batch batch;
  std::vector<const std::pair<std::string, std::string>*> adopted;
  for (const auto& entry : copy.keys) {
    const auto& [subject, key] = entry;
    if (key.size() != kKeyBytes || keys_.count(subject) || erased_.count(subject)) continue;
    batch.Put(KeyRecord(subject), key);
    adopted.push_back(&entry);
  }
  if (batch.empty()) return Status::Ok();
  OKR_RETURN_IF_ERROR(store_->Write(batch));
  for (const auto* entry : adopted) keys_.emplace(entry->first, entry->second);
  ++generation_;
  return Status::Ok();
}

Status EnforceErasures(const EventStore& store, KeyRing* ring,
                       std::vector<std::string>* erased_again, bool durable) {
  assert(ring != nullptr);
  for (const std::string& subject : ring->Subjects()) {
    OKR_ASSIGN_OR_RETURN(auto events, store.ReadStream(subject));
    bool erased = false;
    for (const auto& e : events) {
      OKR_ASSIGN_OR_RETURN(auto decoded, DecodedEvent::Decode(e.bytes));
      erased = erased || decoded->event().which() == W::SUBJECT_ERASED;
    }
    if (!erased) continue;
    if (durable) {
      OKR_RETURN_IF_ERROR(ring->Erase(subject));
    } else {
      ring->Forget(subject);
    }
    if (erased_again) erased_again->push_back(subject);
  }
  return Status::Ok();
}

namespace {

// One attempt of EraseSubject, from the person's stream as it reads now.
Result<uint64_t> EraseOnce(EventStore* store, KeyRing* ring, const std::string& subject,
                           const std::string& actor, const std::string& reason) {
  OKR_ASSIGN_OR_RETURN(auto events, store->ReadStream(subject));
  bool person = false;
  for (const auto& e : events) {
    OKR_ASSIGN_OR_RETURN(auto decoded, DecodedEvent::Decode(e.bytes));
    auto ev = decoded->event();
    if (ev.which() == W::UNIT_CREATED) {
      person = ev.getUnitCreated().getKind() == schema::UnitKind::PERSON;
    } else if (ev.which() == W::SUBJECT_ERASED) {
      OKR_RETURN_IF_ERROR(ring->Erase(subject));
      return Status::AlreadyExists(
          "subject " + subject + " was erased at seq " + std::to_string(e.seq), "subject");
    }
  }
  if (!person) return Status::NotFound("no person unit " + subject, "subject");
  // The key first: once the event is in the log, readers (the live feeds,
  // a replica) take what they rendered before it for stale.
  OKR_RETURN_IF_ERROR(ring->Erase(subject));
  AppendRequest request;
  request.events.emplace_back(actor, subject, reason);
  request.events.back().event().initSubjectErased();
  // The stream as read: an erasure racing this one moved it (kVersionMismatch).
  request.expected.push_back({subject, events.empty() ? 0 : events.size()});
  OKR_ASSIGN_OR_RETURN(AppendResult appended, store->Append(std::move(request)));
  return appended.last_seq;
}

}  // namespace

Result<uint64_t> EraseSubject(EventStore* store, KeyRing* ring, const std::string& subject,
                              const std::string& actor, const std::string& reason) {
  assert(store != nullptr && ring != nullptr && !reason.empty());
  // The person's stream moved between the read and the append: read it
  // again, so the loser of two racing erasures hears of the winner's
  // (kAlreadyExists naming its seq), and one racing another write erases.
  constexpr int kAttempts = 3;
  for (int attempt = 1;; ++attempt) {
    Result<uint64_t> erased = EraseOnce(store, ring, subject, actor, reason);
    if (erased.ok() || erased.status().code() != Status::Code::kVersionMismatch ||
        attempt == kAttempts) {
      return erased;
    }
  }
}

void InstallKeyRing(const KeyRing* ring, const EventStore* store) {
  installed_store.store(store);
  installed_ring.store(ring);
}

namespace {

// The mark kSealedHere of `field` at `seq`, opened from the event there.
Revealed RevealHere(const KeyRing& ring, uint64_t seq, PersonalField field) {
  const EventStore* store = installed_store.load();
  if (store == nullptr || seq == 0) return {Revealed::State::kErased, {}};
  auto events = store->Read(seq - 1, 1);
  if (!events.ok() || events->empty() || (*events)[0].seq != seq) {
    return {Revealed::State::kDamaged, {}};
  }
  auto decoded = DecodedEvent::Decode((*events)[0].bytes);
  if (!decoded.ok()) return {Revealed::State::kDamaged, {}};
  auto ev = (*decoded)->event();
  for (auto s : ev.getSealed()) {
    if (s.getField() != field) continue;
    return ring.Open(View(s.getSubject()), seq, field, View(s.getBox()));
  }
  return {Revealed::State::kDamaged, {}};
}

}  // namespace

Revealed Reveal(std::string_view stored, uint64_t seq, PersonalField field) {
  if (!IsSealedToken(stored)) return {Revealed::State::kPlain, std::string(stored)};
  const KeyRing* ring = installed_ring.load();
  if (ring == nullptr) return {Revealed::State::kErased, {}};
  if (stored == kSealedHere) return RevealHere(*ring, seq, field);
  return ring->Reveal(stored);
}

}  // namespace okr
