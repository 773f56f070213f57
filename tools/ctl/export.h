// Exporting one cycle's OKRs as CSV or JSON, in the formats import reads
// (docs/IMPORT.md). Export → import into an empty store → export gives
// the same bytes: everything is ordered by the state, never by seq, and
// numbers are written in their shortest exact form.
#pragma once

#include <nlohmann/json.hpp>

#include <functional>
#include <map>
#include <optional>
#include <string>

#include "eventstore/base/status.h"
#include "projections/domain/projection.h"
#include "tools/ctl/client.h"

namespace okr::ctl {

// What an export is made of, as the HTTP API shows it (View's JSON), so
// an export from a data directory and one through okrd are built from the
// same documents.
struct ExportInput {
  std::string cycle;
  uint64_t as_of_seq = 0;
  nlohmann::json units = nlohmann::json::array();       // active units
  nlohmann::json cycles = nlohmann::json::array();      // the cycle and the cycles it lies in
  nlohmann::json objectives = nlohmann::json::array();  // the cycle's active objectives
  std::map<std::string, nlohmann::json> check_ins;      // key result id → its series
};

// From a projection (a data directory), as of `as_of`.
Result<ExportInput> CollectFromProjection(const Projection& projection, const std::string& cycle,
                                          uint64_t as_of, bool with_check_ins);
// From a running okrd; `as_of` empty: its head, pinned by the first answer.
// `progress` (optional) gets (key results read, key results) while the
// check-in series are fetched, one request each.
Result<ExportInput> CollectFromServer(Client& client, const std::string& cycle,
                                      std::optional<uint64_t> as_of, bool with_check_ins,
                                      const std::function<void(size_t, size_t)>& progress = {});

// One row per key result (an objective without key results gets one row).
std::string RenderCsv(const ExportInput& input);
// {"format":"okrd-okrs","version":1,"units","cycles","objectives"}.
std::string RenderJson(const ExportInput& input);

}  // namespace okr::ctl
