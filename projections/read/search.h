// Finding objectives by the words a person types (GET /v1/objectives?q=):
// each word, case folded, must occur in the objective's id, title, owner
// (id or name) or one of its key results' titles or owners. A linear
// scan, cheap per objective: folding a few short strings and a substring
// search per word.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "eventstore/base/status.h"

namespace okr {

class View;
struct Objective;

// The words of a search, folded. Empty (no words) matches everything.
class TextQuery {
 public:
  // At most this many characters (code points) and words: a title holds
  // at most 200 characters, so a longer query could match nothing.
  static constexpr size_t kMaxChars = 200;
  static constexpr size_t kMaxWords = 16;

  // The query `text` (words split at spaces), or kInvalid naming "q":
  // not UTF-8, a control character (a %0A), too long or too many words.
  static Result<TextQuery> Parse(std::string_view text);

  bool empty() const { return words_.empty(); }
  // True when every word occurs in one of the fields of `objective` as it
  // stood at the view's as_of (which must exist then): id, title, owner
  // (id and name), its active key results' titles and owners.
  bool Matches(const View& view, const Objective& objective) const;

 private:
  std::vector<std::string> words_;  // folded, distinct, none empty
};

// `text` with letters folded to lower case: ASCII, Latin-1, Latin
// Extended-A, Greek and Cyrillic capitals; every other byte as it is. The
// folded text has the same length in bytes, so it stays valid UTF-8.
std::string FoldCase(std::string_view text);

}  // namespace okr
