// What okrctl's commands (tools/ctl/cmd_*.cc) share: reporting failures,
// opening a data directory or connecting to okrd, progress bars, and the
// small formatters of their text output. Private to the commands; the
// functions that print write to std::cout / std::cerr and, like the
// commands, run on main's thread only.
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "eventstore/base/status.h"
#include "eventstore/event_store.h"
#include "tools/ctl/client.h"
#include "tools/ctl/commands.h"

namespace okr::ctl::cmd {

using SteadyClock = std::chrono::steady_clock;

double SecondsSince(SteadyClock::time_point start);

// "okrctl: <message>" on stderr; returns kExitFailed (Usage, in
// commands.h: kExitUsage).
int Fail(const std::string& message);
// Fail unless `a` is a 2xx answer; `what` names the request.
int Answered(const HttpAnswer& a, const std::string& what);

// A hint to append when opening a data directory failed on its lock.
std::string OpenHint(const Status& s);
// `dir` opened read-only (it must exist): reads also a broken log. The
// key store beside it, when there is one, is opened read-only for the
// personal fields sealed in it (SPEC §10).
Result<std::unique_ptr<EventStore>> OpenForReading(const std::string& dir);

// Whether to draw progress bars: on a terminal, and never under --json.
bool Interactive(bool json_out);
// store.Verify() with a "verifying" bar; store.VerifyTree() instead when
// the log has its tree, so a bad tree node is reported as well.
VerifyReport VerifyWithProgress(const EventStore& store, bool json_out);

// Formatting a value of okrd's JSON for a table: "42%" (or "-"), the
// string (or ""), the number in its shortest form (or "").
std::string Percent(const nlohmann::json& v);
std::string Str(const nlohmann::json& v);
std::string Number(const nlohmann::json& v);
// "&as_of=N", or "" without one.
std::string AsOf(const std::optional<uint64_t>& as_of);

// Columns padded to their widest cell (UTF-8 aware); the last column is
// not padded. Rows may be shorter than the header, not longer.
void PrintTable(const std::vector<std::string>& header,
                const std::vector<std::vector<std::string>>& rows);

}  // namespace okr::ctl::cmd
