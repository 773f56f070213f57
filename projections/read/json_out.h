// JsonOut: JSON written as it is produced (a SAX writer), never held as a
// document. Big answers (the cascade of a whole organisation) stream
// through it in bounded pieces; small ones are collected as text.
//
// The text is exactly what nlohmann::json::dump() writes for the same
// document, which every answer was before it streamed: numbers in
// nlohmann's shortest round-trip form, non-finite numbers as null, and
// each object's keys in ascending byte order — the writer must give them
// in that order (asserted), because a stream cannot sort what it has sent.
// Strings are written as given: they must be valid UTF-8 (okrd refuses
// other text when it is written). A control character other than tab and
// line breaks, which okrd also refuses, would come out as \u001B where
// nlohmann writes \u001b: the same JSON, not the same bytes.
#pragma once

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace okr {

class JsonOut {
 public:
  // Receives the text in order, a piece at a time.
  using Sink = std::function<void(std::string_view)>;

  // Without a sink the text is kept for Take(); with one, it is handed on
  // whenever `flush_at` bytes are waiting, and by Flush(). One JsonOut
  // writes one value, on one thread.
  explicit JsonOut(Sink sink = nullptr, size_t flush_at = 64 * 1024);

  JsonOut& StartObject();
  JsonOut& EndObject();
  JsonOut& StartArray();
  JsonOut& EndArray();
  // An object's key: greater than the previous key of the same object.
  JsonOut& Key(std::string_view key);
  // The same for a key spelled out in the source: the answers' own keys
  // hold no byte that needs an escape (asserted), so it is copied as it is.
  template <size_t N>
  JsonOut& Key(const char (&key)[N]) {
    return KeyAsIs(std::string_view(key, N - 1));
  }
  JsonOut& String(std::string_view value);
  // The string, or null when it is empty.
  JsonOut& StringOrNull(std::string_view value);
  JsonOut& Number(double value);
  // The number, or null when there is none.
  JsonOut& NumberOrNull(std::optional<double> value);
  JsonOut& Uint(uint64_t value);
  JsonOut& Int(int64_t value);
  JsonOut& Bool(bool value);
  JsonOut& Null();
  // A value given as a document (small ones: an error body, an event's data).
  JsonOut& Json(const nlohmann::json& value);

  // Hands what is waiting to the sink.
  void Flush();
  // The text written so far (without a sink); the writer starts afresh.
  std::string Take();
  // Bytes written and not yet handed on.
  size_t waiting() const { return buffer_.GetSize(); }
  // Bytes written so far, whether handed on or waiting.
  size_t bytes() const { return handed_ + buffer_.GetSize(); }

 private:
  void Wrote();  // after each value: flush when enough is waiting
  JsonOut& KeyAsIs(std::string_view key);
  void CheckKeyOrder(std::string_view key);  // where asserts are on
  // A key or string value that needs no escape, quoted.
  void Quoted(std::string_view text);
  // A key or string value, escaped only where it holds a byte that needs it.
  void Text(std::string_view text);
  // Room for `size` bytes of a value of `type`, after the separator the
  // writer puts before it.
  char* Raw(rapidjson::Type type, size_t size);

  rapidjson::StringBuffer buffer_;
  rapidjson::Writer<rapidjson::StringBuffer> writer_;
  Sink sink_;
  size_t flush_at_;
  size_t handed_ = 0;
  // Per open object, the last key (kept only where asserts are on).
  std::vector<std::string> last_key_;
};

// The text a function writes through a JsonOut.
std::string WriteJson(const std::function<void(JsonOut&)>& write);
// The same, as a document (for callers that still add to it).
nlohmann::json WriteJsonDocument(const std::function<void(JsonOut&)>& write);

}  // namespace okr
