// A review's printed checkpoint read back as its reader would: the section
// that ends its Markdown form, or the "#checkpoint" rows that end its CSV
// form (docs/API.md, "Provable history").
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace okr::testing {

struct PrintedCheckpoint {
  std::string review;  // the text before the checkpoint, byte for byte
  uint64_t size = 0;
  std::string root;  // base64, as printed
  std::string note;  // the signed note, verbatim
  // A replica's review of an older tree (CSV only): the review's size, its
  // root and the consistency proof's hashes, separated by spaces.
  struct Consistency {
    uint64_t from = 0;
    std::string from_root;
    std::string proof;
  };
  std::optional<Consistency> consistency;
};

// The checkpoint that ends `text`, a review as `format` ("md" or "csv");
// nullopt, with a test failure saying why, when `text` does not end with
// one in the documented layout (a CSV also stays one table: every record
// as wide as its header).
std::optional<PrintedCheckpoint> ReadPrintedCheckpoint(const std::string& text,
                                                       const std::string& format);

}  // namespace okr::testing
