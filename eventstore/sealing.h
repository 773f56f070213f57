// Sealing: personal fields encrypted under a key per subject, and erased by
// deleting that key (crypto-shredding, SPEC §10; docs/PRIVACY.md).
//
// A subject is a person unit. The person's name and email, and the free
// texts of events whose actor's token names that person, are stored as
// AES-256-GCM ciphertexts in the event's `sealed` list; the associated data
// binds each to its subject, seq and field (docs/FORMAT.md, "Sealed
// fields"). The keys live in the key store (eventstore/keystore.h), never
// in the log or its backups. Erasing a subject deletes its key and leaves a
// mark in the key store; the log records it as subject.erased. The stored
// bytes never change, so the chain and the tree still verify.
//
// Folds keep no plaintext of a sealed field: a person's name and email as
// a token carrying the ciphertext (SealedToken), and the texts of one event
// (a note, a comment, a review, a reason) as the mark kSealedHere, which
// says "sealed in the event of this object's seq". So the projection and
// its snapshots hold no plaintext, the fold decrypts nothing and copies no
// ciphertext, and an erasure needs no rebuild. Whatever shows a text
// reveals it (Reveal) at that moment, through the process's key ring.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "eventstore/base/status.h"
#include "schemas/okr.capnp.h"

namespace okr {

class EventStore;  // eventstore/event_store.h
class KeyStore;    // eventstore/keystore.h

using PersonalField = schema::PersonalField;

// The field's name as the API shows it: "note", "reason", "before".
std::string_view PersonalFieldName(PersonalField field);

// The text `field` has in the body of `event` as stored (empty when it is
// sealed), or nullopt when events of this type have no such field.
std::optional<std::string_view> BodyText(schema::Event::Reader event, PersonalField field);
// Sets `field` in the body of `event`, whose union member is already
// chosen; false when events of this type have no such field.
bool SetBodyText(schema::Event::Builder event, PersonalField field, std::string_view text);

// Whether `event` seals `field`.
bool IsSealed(schema::Event::Reader event, PersonalField field);
// The text a fold keeps for a unit's `field` of `event`: the sealed token
// of its entry in `sealed` when there is one, else the body's text as stored.
std::string StoredText(schema::Event::Reader event, PersonalField field);

// What a fold keeps for a text sealed in the event its object records the
// seq of (a check-in's note, a comment's text, a review's words, a reason).
inline constexpr std::string_view kSealedHere =
    "\xff"
    "S";

// A sealed field as folds and snapshots keep it: 0xFF 'S', then in base64
// (RFC 4648, padded) the seq (8 bytes, big-endian), the field (1 byte), the
// subject's length (1 byte) and bytes, and the box (nonce, ciphertext,
// tag). Never valid UTF-8, so no text written through the API can be taken
// for one, and free of NULs, so it is a Cap'n Proto text.
std::string SealedToken(uint64_t seq, PersonalField field, std::string_view subject,
                        std::string_view box);
// The token of `entry`, sealed in the event at `seq`.
std::string SealedToken(uint64_t seq, schema::SealedText::Reader entry);
// A token or the mark kSealedHere.
bool IsSealedToken(std::string_view stored);
// The subject a token is sealed under (empty for plain text or a malformed token).
std::string SealedSubject(std::string_view stored);

// What a stored text shows as.
struct Revealed {
  enum class State {
    kPlain,    // never sealed: the text as written
    kOpened,   // sealed, and opened with its subject's key
    kErased,   // sealed under a key this okrd does not hold: the subject was erased
    kDamaged,  // sealed, but the ciphertext or token does not authenticate
  };
  State state = State::kPlain;
  std::string text;  // empty unless readable
  bool readable() const { return state == State::kPlain || state == State::kOpened; }
  bool erased() const { return state == State::kErased; }
  bool damaged() const { return state == State::kDamaged; }
};

// AES-256-GCM sealing with one key per subject, the keys kept in a key
// store. Thread-safe: sealing and revealing take a shared lock, creating
// and erasing keys an exclusive one.
class KeyRing {
 public:
  // Loads the subjects' keys and erasure marks from `store`, which it
  // borrows (it must outlive the ring). A subject marked erased whose key
  // is still there (an erasure cut short) loses the key now — from the
  // key store too, unless `read_only` (a store opened read-only).
  static Result<std::unique_ptr<KeyRing>> Open(KeyStore* store, bool read_only = false);

  // Makes sure every one of `subjects` has a key, creating those missing
  // in one synced write to the key store. kConflict naming the first
  // subject erased (nothing personal is written for it again), and then
  // no key is made.
  Status Prepare(const std::vector<std::string_view>& subjects);
  // The size of the box that seals a text of `plain_bytes`: a 12-byte
  // nonce, the ciphertext, a 16-byte tag.
  static size_t BoxBytes(size_t plain_bytes);
  // Seals `plain` under `subject`'s key (Prepare first) for `field` of the
  // event at `seq` into `box`, of BoxBytes(plain.size()) bytes.
  Status Seal(std::string_view subject, uint64_t seq, PersonalField field, std::string_view plain,
              kj::ArrayPtr<kj::byte> box) const;
  // Opens the `box` of `field` at `seq` under `subject`'s key.
  Revealed Open(std::string_view subject, uint64_t seq, PersonalField field,
                std::string_view box) const;
  // A stored text as it shows: plain text as it is, a token opened.
  Revealed Reveal(std::string_view stored) const;

  // Marks `subject` erased and deletes its key, both synced, then compacts
  // the key store so the key does not linger in its files. Idempotent.
  Status Erase(std::string_view subject);
  // Erase's effect on this ring alone, the key store untouched: for a
  // reader of a key store opened read-only.
  void Forget(std::string_view subject);
  bool IsErased(std::string_view subject) const;
  // Whether `subject` has a key here or is erased here: a replica copies
  // the primary's keys when an event comes sealed under neither.
  bool Knows(std::string_view subject) const {
    std::shared_lock lock(mu_);
    return keys_.contains(subject) || erased_.contains(subject);
  }
  // The subjects that have a key, in no order.
  std::vector<std::string> Subjects() const;
  size_t size() const;

  // What a read replica copies (GET /v1/replication/keys): every key and
  // erasure mark, and the version naming them, which changes whenever a
  // key is made or erased (and whenever the ring is opened again).
  struct Copy {
    std::string version;
    std::vector<std::pair<std::string, std::string>> keys;  // subject, 32-byte key
    std::vector<std::string> erased;
  };
  Copy Export() const;
  std::string version() const;
  // A replica's: keeps (synced) the keys of `copy` it lacks — never one of
  // a subject erased here — and erases the subjects erased there.
  Status Adopt(const Copy& copy);

 private:
  explicit KeyRing(KeyStore* store);
  std::string VersionLocked() const;
  KeyStore* store_;
  uint64_t instance_ = 0;    // random, per Open: a version never repeats across restarts
  uint64_t generation_ = 0;  // keys made and subjects erased since Open
  // Looked up by string_view, without a copy: the writer looks up a
  // subject for every field it seals.
  struct Hash : std::hash<std::string_view> {
    using is_transparent = void;
  };
  mutable std::shared_mutex mu_;
  std::unordered_map<std::string, std::string, Hash, std::equal_to<>> keys_;  // subject → key
  std::unordered_set<std::string, Hash, std::equal_to<>> erased_;
};

// The log is the authority on erasures: deletes again the key of every
// subject with a key whose stream holds a subject.erased event (a key-store
// backup from before the erasure, restored). Call it whenever the key store
// and the log are opened together. `erased_again` (optional) gets each.
// Read-only (`durable` false): the ring forgets the keys, the key store
// keeps them.
Status EnforceErasures(const EventStore& store, KeyRing* ring,
                       std::vector<std::string>* erased_again = nullptr, bool durable = true);

// An erasure (SPEC §10): erases `subject`'s key from `ring` (marked, deleted,
// compacted away), then appends subject.erased (who: `actor`, why:
// `reason`, which must not be empty). Cut short between the two, the mark
// refuses new personal data for the subject and a retry appends the event.
// kNotFound when `subject` is no person unit; kAlreadyExists naming the seq
// when the log already records its erasure (the key is erased again all
// the same), as the loser of two racing erasures hears. The seq of the
// new event.
Result<uint64_t> EraseSubject(EventStore* store, KeyRing* ring, const std::string& subject,
                              const std::string& actor, const std::string& reason);

// The key ring the process's readers reveal through, and the log the mark
// kSealedHere is read from (okrd and okrctl install theirs once they open
// them); nullptr: none, and every sealed text reads as erased. Both must
// outlive their installation.
void InstallKeyRing(const KeyRing* ring, const EventStore* store);
// A stored text as it shows, through the installed ring: plain text as it
// is, a token opened, and the mark kSealedHere opened from `field` of the
// event at `seq` (read from the installed log).
Revealed Reveal(std::string_view stored, uint64_t seq = 0,
                PersonalField field = PersonalField::NAME);

}  // namespace okr
