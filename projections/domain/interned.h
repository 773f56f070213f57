// Interned: a text kept once per process, named by a 4-byte handle.
//
// The fold keeps millions of short texts that repeat (actors, reasons,
// statuses, notes) or that only need to be named (check-in ids). Each is
// interned once in a process-wide, append-only table and the projection
// holds the handle: equal texts have equal handles, a copy of a check-in
// costs no allocation, and a handle stays readable after the projection
// that made it is gone — rows copied out under the projection's lock are
// rendered outside it (docs/DECISIONS.md, "A compact fold").
//
// Thread-safe: interning takes the table's lock; reading a handle's text
// takes none (its bytes never move and are written before the handle is
// returned, so whoever got the handle through a lock or a thread start
// reads them complete). Nothing interned is ever freed: the table holds
// the distinct texts of the logs folded, which a long-lived okrd keeps in
// its projection anyway.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace okr {

class Interned {
 public:
  // The empty text.
  constexpr Interned() = default;

  // The handle of `text`, interned now if it is new. With `added`, says
  // whether it was: a text new to the process is in no projection's index
  // yet, so the fold need not look a new check-in's id up there.
  static Interned Of(std::string_view text, bool* added = nullptr);
  // The handle of `text` if it was ever interned; nullopt otherwise
  // (interns nothing, so a lookup of a hostile id never grows the table).
  static std::optional<Interned> Find(std::string_view text);
  // How many distinct texts are interned (the empty text counts).
  static size_t Count();

  // The text; view().data() is NUL-terminated.
  std::string_view view() const;
  const char* c_str() const { return view().data(); }
  operator std::string_view() const { return view(); }  // NOLINT: a text, read as one
  std::string str() const { return std::string(view()); }
  bool empty() const { return handle_ == 0; }
  size_t size() const { return view().size(); }
  uint32_t handle() const { return handle_; }

  // Texts are interned once, so equal handles mean equal texts.
  friend bool operator==(Interned a, Interned b) { return a.handle_ == b.handle_; }
  friend bool operator==(Interned a, std::string_view b) { return a.view() == b; }

 private:
  explicit constexpr Interned(uint32_t handle) : handle_(handle) {}
  friend class InternTable;
  uint32_t handle_ = 0;  // 0 is the empty text
};

// The same hash of a text the table uses, for maps keyed by text that
// store handles (Projection's id index).
uint64_t HashText(std::string_view text);

}  // namespace okr
