// Personal fields as answers show them (SPEC §10): revealed through the
// process's key ring (eventstore/sealing.h) when the answer is made. A
// field that cannot be shown is null in JSON, with "erased": true on its
// object when its subject was erased and "damaged": true when its
// ciphertext does not authenticate; Markdown and CSV show [erased] and
// [damaged]. Never the ciphertext, never garbage.
#pragma once

#include <nlohmann/json.hpp>

#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "eventstore/sealing.h"
#include "projections/read/json_out.h"

namespace okr {

// A stored text and where it was written: `seq` and `field` find a text
// the projection keeps as kSealedHere (a note, a comment, a review's
// words, a reason: the seq of its object's meta); a person's name or
// email needs neither.
struct Stored {
  std::string_view text;
  uint64_t seq = 0;
  PersonalField field = PersonalField::NAME;
};

// The personal fields of one answer object, revealed once.
class Shown {
 public:
  Shown(std::initializer_list<Stored> stored);
  const Revealed& operator[](size_t i) const { return fields_[i]; }
  // The field's text, or null when it cannot be shown.
  void Write(JsonOut& out, size_t i) const;
  // "damaged": true, "erased": true — each only when some field is so.
  // JsonOut takes keys in order: write them where they sort, together
  // (Flags) unless a key such as "email" falls between them.
  void Damaged(JsonOut& out) const;
  void Erased(JsonOut& out) const;
  void Flags(JsonOut& out) const {
    Damaged(out);
    Erased(out);
  }
  bool erased() const { return erased_; }
  bool damaged() const { return damaged_; }

 private:
  std::vector<Revealed> fields_;
  bool erased_ = false;
  bool damaged_ = false;
};

// For answers built as documents (nlohmann::json, which sorts the keys):
// whether any field shown so far was erased or damaged, and the flags
// added to the object at the end.
struct ShownFlags {
  bool erased = false;
  bool damaged = false;
  void AddTo(nlohmann::json* object) const;
};
// The stored text as a JSON value: its text, or null, noted in `flags`.
nlohmann::json ShownJson(const Stored& stored, ShownFlags* flags);

// A stored text for Markdown and CSV: the text (written by `escape`, when
// given: user text is escaped, okrd's placeholders are not), "[erased]" or
// "[damaged]".
std::string ShownText(const Stored& stored, std::string (*escape)(std::string_view) = nullptr);

}  // namespace okr
