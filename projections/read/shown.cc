#include "projections/read/shown.h"

namespace okr {

Shown::Shown(std::initializer_list<Stored> stored) {
  fields_.reserve(stored.size());
  for (const Stored& s : stored) {
    fields_.push_back(Reveal(s.text, s.seq, s.field));
    erased_ = erased_ || fields_.back().erased();
    damaged_ = damaged_ || fields_.back().damaged();
  }
}

void Shown::Write(JsonOut& out, size_t i) const {
  if (fields_[i].readable()) {
    out.String(fields_[i].text);
  } else {
    out.Null();
  }
}

void Shown::Damaged(JsonOut& out) const {
  if (damaged_) out.Key("damaged").Bool(true);
}

void Shown::Erased(JsonOut& out) const {
  if (erased_) out.Key("erased").Bool(true);
}

void ShownFlags::AddTo(nlohmann::json* object) const {
  if (erased) (*object)["erased"] = true;
  if (damaged) (*object)["damaged"] = true;
}

nlohmann::json ShownJson(const Stored& stored, ShownFlags* flags) {
  Revealed r = Reveal(stored.text, stored.seq, stored.field);
  flags->erased = flags->erased || r.erased();
  flags->damaged = flags->damaged || r.damaged();
  if (!r.readable()) return nullptr;
  return std::move(r.text);
}

std::string ShownText(const Stored& stored, std::string (*escape)(std::string_view)) {
  Revealed r = Reveal(stored.text, stored.seq, stored.field);
  if (r.erased()) return "[erased]";
  if (r.damaged()) return "[damaged]";
  return escape != nullptr ? escape(r.text) : std::move(r.text);
}

}  // namespace okr
