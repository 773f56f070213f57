#include "projections/read/json_out.h"

#include <array>
#include <cassert>
#include <charconv>
#include <cmath>
#include <cstring>
#include <utility>

namespace okr {

namespace {

// True when `text` holds no byte JSON must escape (a control character, a
// quote, a backslash): ids, dates, names, most titles. Eight bytes at a
// time; a false alarm only costs the escaping path.
bool NeedsNoEscape(std::string_view text) {
  constexpr uint64_t kOnes = 0x0101010101010101ULL, kHighs = 0x8080808080808080ULL;
  auto any_zero = [](uint64_t w) { return (w - kOnes) & ~w & kHighs; };
  size_t i = 0;
  for (; i + 8 <= text.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, text.data() + i, 8);
    const uint64_t below_space = (w - kOnes * 0x20) & ~w & kHighs;
    if (below_space | any_zero(w ^ (kOnes * '"')) | any_zero(w ^ (kOnes * '\\'))) return false;
  }
  for (; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c == '"' || c == '\\') return false;
  }
  return true;
}

// nlohmann writes a whole number below 1e15 as its digits and ".0" (its
// shortest form has at most 15 digits, which it writes in full); the
// digits come faster from the integer. Returns the end of the text.
char* WholeNumber(char* first, char* last, double value) {
  assert(std::trunc(value) == value && std::fabs(value) < 1e15);
  if (std::signbit(value)) *first++ = '-';  // -0.0 too, as nlohmann does
  first = std::to_chars(first, last, static_cast<uint64_t>(std::fabs(value))).ptr;
  *first++ = '.';
  *first++ = '0';
  return first;
}

}  // namespace

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

void JsonOut::CheckKeyOrder([[maybe_unused]] std::string_view key) {
#ifndef NDEBUG
  // nlohmann::json sorts keys; the first key of an object is compared
  // with "", which every non-empty key follows.
  assert(!last_key_.empty());
  assert(last_key_.back().empty() || key > last_key_.back());
  last_key_.back().assign(key);
#endif
}

JsonOut& JsonOut::Key(std::string_view key) {
  CheckKeyOrder(key);
  Text(key);
  return *this;
}

JsonOut& JsonOut::KeyAsIs(std::string_view key) {
  CheckKeyOrder(key);
  assert(NeedsNoEscape(key));
  Quoted(key);
  return *this;
}

JsonOut& JsonOut::String(std::string_view value) {
  Text(value);
  Wrote();
  return *this;
}

void JsonOut::Text(std::string_view text) {
  if (!NeedsNoEscape(text)) {
    writer_.String(text.data(), static_cast<rapidjson::SizeType>(text.size()));
    return;
  }
  Quoted(text);
}

void JsonOut::Quoted(std::string_view text) {
  char* quoted = Raw(rapidjson::kStringType, text.size() + 2);
  quoted[0] = '"';
  std::memcpy(quoted + 1, text.data(), text.size());
  quoted[text.size() + 1] = '"';
}

char* JsonOut::Raw(rapidjson::Type type, size_t size) {
  // The writer puts the separator before the value (",", or ":" after a
  // key) and counts it; the value's bytes go straight into the buffer it
  // writes to, the caller's to fill.
  writer_.RawValue("", 0, type);
  return buffer_.Push(size);
}

JsonOut& JsonOut::StringOrNull(std::string_view value) {
  return value.empty() ? Null() : String(value);
}

JsonOut& JsonOut::Number(double value) {
  if (!std::isfinite(value)) return Null();  // as nlohmann::json dumps them
  // nlohmann's shortest round-trip form ("20.0", "1e+21"), not rapidjson's
  // ("20.0", "1e21"): the same numbers, and the same bytes as before.
  std::array<char, 64> text;
  char* end = std::trunc(value) == value && std::fabs(value) < 1e15
                  ? WholeNumber(text.data(), text.data() + text.size(), value)
                  : nlohmann::detail::to_chars(text.data(), text.data() + text.size(), value);
  const auto size = static_cast<size_t>(end - text.data());
  std::memcpy(Raw(rapidjson::kNumberType, size), text.data(), size);
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
