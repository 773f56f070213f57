#include "projections/read/json_out.h"

#include <array>
#include <cassert>
#include <cmath>
#include <utility>

namespace okr {

JsonOut::JsonOut(Sink sink, size_t flush_at)
    : writer_(buffer_), sink_(std::move(sink)), flush_at_(flush_at) {}

JsonOut& JsonOut::StartObject() {
  writer_.StartObject();
#ifndef NDEBUG
  last_key_.emplace_back();
#endif
  return *this;
}

JsonOut& JsonOut::EndObject() {
#ifndef NDEBUG
  assert(!last_key_.empty());
  last_key_.pop_back();
#endif
  writer_.EndObject();
  Wrote();
  return *this;
}

JsonOut& JsonOut::StartArray() {
  writer_.StartArray();
  return *this;
}

JsonOut& JsonOut::EndArray() {
  writer_.EndArray();
  Wrote();
  return *this;
}

JsonOut& JsonOut::Key(std::string_view key) {
#ifndef NDEBUG
  // nlohmann::json sorts keys; the first key of an object is compared
  // with "", which every non-empty key follows.
  assert(!last_key_.empty());
  assert(last_key_.back().empty() || key > last_key_.back());
  last_key_.back().assign(key);
#endif
  writer_.Key(key.data(), static_cast<rapidjson::SizeType>(key.size()));
  return *this;
}

JsonOut& JsonOut::String(std::string_view value) {
  writer_.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
  Wrote();
  return *this;
}

JsonOut& JsonOut::StringOrNull(std::string_view value) {
  return value.empty() ? Null() : String(value);
}

JsonOut& JsonOut::Number(double value) {
  if (!std::isfinite(value)) return Null();  // as nlohmann::json dumps them
  // nlohmann's shortest round-trip form ("20.0", "1e+21"), not rapidjson's
  // ("20.0", "1e21"): the same numbers, and the same bytes as before.
  std::array<char, 64> text{};
  char* end = nlohmann::detail::to_chars(text.data(), text.data() + text.size(), value);
  writer_.RawValue(text.data(), static_cast<size_t>(end - text.data()), rapidjson::kNumberType);
  Wrote();
  return *this;
}

JsonOut& JsonOut::NumberOrNull(std::optional<double> value) {
  return value ? Number(*value) : Null();
}

JsonOut& JsonOut::Uint(uint64_t value) {
  writer_.Uint64(value);
  Wrote();
  return *this;
}

JsonOut& JsonOut::Int(int64_t value) {
  writer_.Int64(value);
  Wrote();
  return *this;
}

JsonOut& JsonOut::Bool(bool value) {
  writer_.Bool(value);
  Wrote();
  return *this;
}

JsonOut& JsonOut::Null() {
  writer_.Null();
  Wrote();
  return *this;
}

JsonOut& JsonOut::Json(const nlohmann::json& value) {
  const std::string text = value.dump();
  writer_.RawValue(text.data(), text.size(),
                   value.is_object()  ? rapidjson::kObjectType
                   : value.is_array() ? rapidjson::kArrayType
                                      : rapidjson::kStringType);
  Wrote();
  return *this;
}

void JsonOut::Wrote() {
  if (sink_ && buffer_.GetSize() >= flush_at_) Flush();
}

void JsonOut::Flush() {
  if (!sink_ || buffer_.GetSize() == 0) return;
  handed_ += buffer_.GetSize();
  sink_(std::string_view(buffer_.GetString(), buffer_.GetSize()));
  buffer_.Clear();
}

std::string JsonOut::Take() {
  assert(!sink_);
  std::string text(buffer_.GetString(), buffer_.GetSize());
  buffer_.Clear();
  writer_.Reset(buffer_);
#ifndef NDEBUG
  last_key_.clear();
#endif
  return text;
}

std::string WriteJson(const std::function<void(JsonOut&)>& write) {
  JsonOut out;
  write(out);
  return out.Take();
}

nlohmann::json WriteJsonDocument(const std::function<void(JsonOut&)>& write) {
  return nlohmann::json::parse(WriteJson(write));
}

}  // namespace okr
