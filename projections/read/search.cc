#include "projections/read/search.h"

#include <algorithm>
#include <cassert>

#include "eventstore/sealing.h"
#include "projections/domain/decider.h"
#include "projections/read/view.h"

namespace okr {

namespace {

// The lower case of capital `cp` among the scripts FoldCase covers, every
// result a two-byte code point like its capital; else `cp`.
char32_t FoldCodePoint(char32_t cp) {
  if (cp >= 0xc0 && cp <= 0xde && cp != 0xd7) return cp + 0x20;  // Latin-1 (not ×)
  if (cp == 0x178) return 0xff;                                  // Ÿ
  // Latin Extended-A pairs capital/small, the capital first; İ (U+0130)
  // and ı fold to one-byte letters and stay as they are.
  bool even_pairs =
      (cp >= 0x100 && cp <= 0x12f) || (cp >= 0x132 && cp <= 0x137) || (cp >= 0x14a && cp <= 0x177);
  bool odd_pairs = (cp >= 0x139 && cp <= 0x148) || (cp >= 0x179 && cp <= 0x17e);
  if ((even_pairs && cp % 2 == 0) || (odd_pairs && cp % 2 == 1)) return cp + 1;
  if (cp >= 0x391 && cp <= 0x3a9 && cp != 0x3a2) return cp + 0x20;  // Greek
  if (cp >= 0x410 && cp <= 0x42f) return cp + 0x20;                 // Cyrillic А–Я
  if (cp >= 0x400 && cp <= 0x40f) return cp + 0x50;                 // Cyrillic Ѐ–Џ
  return cp;
}

bool IsContinuation(char c) { return (static_cast<unsigned char>(c) & 0xc0) == 0x80; }

// FoldCase, in place: the length of `*text` does not change.
void FoldInPlace(std::string* text) {
  std::string& out = *text;
  for (size_t i = 0; i < out.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(out[i]);
    if (c >= 'A' && c <= 'Z') {
      out[i] = static_cast<char>(c + ('a' - 'A'));
      continue;
    }
    if ((c & 0xe0) != 0xc0 || i + 1 == out.size() || !IsContinuation(out[i + 1])) continue;
    char32_t cp = (char32_t{c} & 0x1f) << 6 | (static_cast<unsigned char>(out[i + 1]) & 0x3f);
    char32_t folded = FoldCodePoint(cp);
    ++i;
    if (folded == cp) continue;
    assert(folded >= 0x80 && folded < 0x800);  // two bytes, like every capital folded
    out[i - 1] = static_cast<char>(0xc0 | (folded >> 6));
    out[i] = static_cast<char>(0x80 | (folded & 0x3f));
  }
}

}  // namespace

std::string FoldCase(std::string_view text) {
  std::string out(text);
  FoldInPlace(&out);
  assert(out.size() == text.size());
  return out;
}

Result<TextQuery> TextQuery::Parse(std::string_view text) {
  OKR_RETURN_IF_ERROR(decide::CheckString(text, "q", kMaxChars, false, false));
  TextQuery query;
  std::string folded = FoldCase(text);
  size_t at = 0;
  while ((at = folded.find_first_not_of(' ', at)) != std::string::npos) {
    size_t end = std::min(folded.find(' ', at), folded.size());
    std::string word = folded.substr(at, end - at);
    auto& words = query.words_;
    if (std::find(words.begin(), words.end(), word) == words.end()) words.push_back(word);
    if (words.size() > kMaxWords) {
      return Status::Invalid("q holds more than " + std::to_string(kMaxWords) + " words", "q");
    }
    at = end;
  }
  return query;
}

bool TextQuery::Matches(const View& view, const Objective& objective) const {
  if (words_.empty()) return true;
  const ObjectiveFields* f = objective.FieldsAt(view.as_of());
  assert(f != nullptr);
  // One text of every field, a line each: a word (never a line break)
  // matches within one field.
  // Kept between calls: a search calls this for every objective.
  thread_local std::string hay;
  hay.assign(objective.id).append(1, '\n').append(f->title);
  auto add_owner = [&](const std::string& unit) {
    hay.append(1, '\n').append(unit);
    // A person's sealed name is found while it can be shown (SPEC §10).
    if (const UnitFields* owner = view.UnitAt(unit)) {
      hay.append(1, '\n').append(IsSealedToken(owner->name) ? Reveal(owner->name).text
                                                            : owner->name);
    }
  };
  add_owner(f->owner);
  for (const KeyResult* kr : view.KeyResultsOf(objective)) {
    const KeyResultFields* k = kr->FieldsAt(view.as_of());
    hay.append(1, '\n').append(k->title);
    if (!k->owner.empty() && k->owner != f->owner) add_owner(k->owner);
  }
  FoldInPlace(&hay);
  return std::all_of(words_.begin(), words_.end(),
                     [&](const std::string& w) { return hay.find(w) != std::string::npos; });
}

}  // namespace okr
