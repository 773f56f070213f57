// The names of the schema's enums as okrd shows them: the enumerant's name
// in snake_case ("onTrack" -> "on_track"), read from schemas/okr.capnp once,
// so the schema is the only list of them.
#pragma once

#include <capnp/schema.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace okr {

// "measuredAt" -> "measured_at".
std::string SnakeCase(std::string_view camel);

// Every enumerant of E by ordinal, in snake_case.
template <typename E>
const std::vector<std::string>& EnumNames() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    for (auto e : capnp::Schema::from<E>().getEnumerants()) {
      auto name = e.getProto().getName();
      out.push_back(SnakeCase(std::string_view(name.begin(), name.size())));
    }
    return out;
  }();
  return names;
}

// The name of `e`; empty for an ordinal this build does not know.
template <typename E>
std::string_view EnumName(E e) {
  const auto& names = EnumNames<E>();
  auto i = static_cast<size_t>(e);
  return i < names.size() ? std::string_view(names[i]) : std::string_view();
}

// The enumerant named `name`, if any.
template <typename E>
std::optional<E> EnumFromName(std::string_view name) {
  const auto& names = EnumNames<E>();
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i] == name) return static_cast<E>(i);
  }
  return std::nullopt;
}

}  // namespace okr
