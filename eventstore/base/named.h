// One table per enum for the names okrd writes and reads, so a value's name
// is spelled once and the name-to-value direction cannot drift from the
// value-to-name one.
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>

namespace okr {

// One row of a name table: an enumerant and the static string for it.
template <typename E>
struct Named {
  E value;
  const char* name;  // static storage; callers may keep the pointer
};

// The name `table` gives `value`, or `fallback` when it has no row for it.
// Pure and allocation-free; safe from any thread. Linear: the tables are short.
template <typename E, std::size_t N>
constexpr const char* NameIn(const Named<E> (&table)[N], E value, const char* fallback) {
  static_assert(N > 0, "a name table has rows");
  for (const auto& row : table) {
    if (row.value == value) return row.name;
  }
  return fallback;
}

// The row of `table` named `name`, or nullptr; the row lives as long as the table.
// Pure and allocation-free; safe from any thread.
template <typename E, std::size_t N>
constexpr const Named<E>* RowNamed(const Named<E> (&table)[N], std::string_view name) {
  for (const auto& row : table) {
    if (name == row.name) return &row;
  }
  return nullptr;
}

// The value `table` names `name`, if any.
template <typename E, std::size_t N>
constexpr std::optional<E> ValueNamed(const Named<E> (&table)[N], std::string_view name) {
  const Named<E>* row = RowNamed(table, name);
  if (row == nullptr) return std::nullopt;
  return row->value;
}

}  // namespace okr
