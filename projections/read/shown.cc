#include "projections/read/shown.h"

namespace okr {

Shown::Shown(std::initializer_list<std::string_view> stored) {
  fields_.reserve(stored.size());
  for (std::string_view s : stored) {
    fields_.push_back(Reveal(s));
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

nlohmann::json ShownJson(std::string_view stored, ShownFlags* flags) {
  Revealed r = Reveal(stored);
  flags->erased = flags->erased || r.erased();
  flags->damaged = flags->damaged || r.damaged();
  if (!r.readable()) return nullptr;
  return std::move(r.text);
}

std::string ShownText(std::string_view stored) {
  Revealed r = Reveal(stored);
  if (r.erased()) return "[erased]";
  if (r.damaged()) return "[damaged]";
  return std::move(r.text);
}

}  // namespace okr
