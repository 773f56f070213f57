// Turning stored event bytes into Event readers, safely, and hashing them.
#pragma once

#include <capnp/message.h>
#include <capnp/serialize.h>

#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "eventstore/base/status.h"
#include "eventstore/format.h"
#include "schemas/okr.capnp.h"

namespace okr {

using format::Hash;

// SHA-256 of `bytes` (OpenSSL).
Hash Sha256(std::string_view bytes);
// SHA-256 of the parts one after another, without joining them first (a
// Merkle leaf: a prefix byte, then the stored value).
Hash Sha256Concat(std::initializer_list<std::string_view> parts);
std::string ToHex(const Hash& hash);
// Parses 64 hex digits; false otherwise.
bool FromHex(std::string_view hex, Hash* hash);
inline constexpr Hash kZeroHash{};
// Whether `event` names `hash` as its prevHash (the chain's link).
bool NamesAsPrev(schema::Event::Reader event, const Hash& hash);

// The log's own events (log.signing_key, SPEC §7): their entity and actor.
// No user id contains ':', so neither can be taken by a user.
inline constexpr char kLogEntity[] = "okrd:log";
inline constexpr char kSystemActor[] = "system:okrd";

// How much of a message Decode checks before handing it out.
enum class DecodeCheck {
  kFull,         // every field a reader could touch: reading it never throws
  kFramingOnly,  // framing and the root only: reading a field may throw
                 // kj::Exception, which the caller must catch
};

// One decoded event. Owns an aligned copy of the bytes it was decoded from,
// so it outlives the buffer it came from. Immutable. Its reader's traversal
// budget (Cap'n Proto's bound on the work a hostile message can cause)
// covers two full walks of the event — render it and fold it — so decode
// where it is used, and do not keep it to read again and again.
class DecodedEvent {
 public:
  // Validates the whole message before returning it: framing, bounds of
  // every pointer (ReaderOptions limits), NUL-terminated texts, no trailing
  // bytes, a known union member. Any failure, including a kj::Exception
  // from Cap'n Proto, comes back as Code::kCorruption; never a crash.
  static Result<std::shared_ptr<const DecodedEvent>> Decode(std::string_view bytes);

  schema::Event::Reader event() const { return root_; }
  size_t size_bytes() const { return words_.size() * sizeof(capnp::word); }

  DecodedEvent(const DecodedEvent&) = delete;
  DecodedEvent& operator=(const DecodedEvent&) = delete;

 private:
  DecodedEvent() = default;
  kj::Array<capnp::word> words_;
  std::unique_ptr<capnp::FlatArrayMessageReader> reader_;
  schema::Event::Reader root_;
};

// Touches every field of `event` a reader could read, as DecodeCheck::kFull
// does; throws kj::Exception at the first malformed one.
void CheckEventFields(schema::Event::Reader event);

// Decodes a run of events into one reused buffer, for replay and verify
// loops: no allocation per event. The reader Read() returns is valid until
// the next Read(). Not thread-safe; one per loop.
class EventScratch {
 public:
  // Errors as DecodedEvent::Decode (kCorruption).
  Result<schema::Event::Reader> Read(std::string_view bytes, DecodeCheck check);

 private:
  kj::Array<capnp::word> words_;
  std::optional<capnp::FlatArrayMessageReader> reader_;
};

// The event type's name as the API shows it: "objective.created",
// "key_result.target_changed", "check_in.recorded". Static storage.
const char* EventTypeName(schema::Event::Which which);
// The event type EventTypeName names `name`; nullopt for any other text.
std::optional<schema::Event::Which> EventTypeNamed(std::string_view name);

// The id `event` creates — the entity of unit.created, cycle.created,
// objective.created and key_result.added, the check-in id of
// check_in.recorded — or an empty view when it creates none. Ids are
// unique across every kind and never reused (docs/FORMAT.md, "ids"); the
// store refuses an append that would create an id twice. The view points
// into `event`.
std::string_view CreatedId(schema::Event::Reader event);

// Serialises a finished message to its stored bytes (flat-array framing).
std::string EncodeMessage(capnp::MessageBuilder& message);

}  // namespace okr
