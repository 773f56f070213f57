// Turning HTTP request bodies and query parameters into commands and
// read parameters, strictly: wrong types, unknown fields and malformed
// values are refused before anything is decided.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>

#include "projections/domain/commands.h"

namespace okr::api {

// Limits on requests (each tested).
inline constexpr size_t kMaxBodyBytes = 1u << 20;  // 1 MiB; larger answers 413
inline constexpr int kMaxJsonDepth = 16;           // nesting of a request body
inline constexpr size_t kDefaultPageSize = 1000;   // SPEC §6: default and maximum 1000
inline constexpr size_t kMaxPageSize = 1000;
// GET /v1/events/raw (SPEC §8): frames of stored bytes for bulk readers.
inline constexpr size_t kDefaultRawEvents = 10'000;
inline constexpr size_t kMaxRawEvents = 100'000;
inline constexpr size_t kMaxUriBytes = 8192;     // compiled into cpp-httplib
inline constexpr size_t kMaxHeaderBytes = 8192;  // compiled into cpp-httplib
inline constexpr size_t kMaxIdempotencyKeyChars = 200;

// A refusal before any decision: HTTP status, error code, message, field.
struct ApiError {
  int status = 400;
  std::string code = "malformed";
  std::string message;
  std::string field;
};

// Parses a request body into a JSON object: 400 for malformed JSON, a body
// that is not an object, nesting deeper than kMaxJsonDepth, or invalid UTF-8;
// 422 for a number too large for a double (1e400), naming its field.
// An empty body is an empty object.
std::optional<nlohmann::json> ParseBody(const std::string& body, ApiError* error);

// What a write route names, beside its body.
enum class WriteRoute {
  kCreateUnit,
  kUpdateUnit,
  kRetireUnit,
  kCreateCycle,
  kUpdateCycle,
  kCloseCycle,
  kReopenCycle,
  kCreateObjective,
  kUpdateObjective,
  kArchiveObjective,
  kCreateKeyResult,
  kUpdateKeyResult,
  kRemoveKeyResult,
  kCheckIn,
  kCorrection,
  kComment,
  kReview,
};

// Builds the command for `route` on path id `id` from `body`; sets *reason
// from the body's optional "reason". Unknown fields and wrong types: 400.
std::optional<Command> ParseCommand(WriteRoute route, const std::string& id,
                                    const nlohmann::json& body, std::string* reason,
                                    ApiError* error);

// `limit`: absent → `fallback`; 1..`max`, else 400.
std::optional<size_t> ParseLimit(const std::string* text, ApiError* error,
                                 size_t fallback = kDefaultPageSize, size_t max = kMaxPageSize);
// A parameter `name` that must be a whole number from `min` to `max`;
// nullopt, with *error a 400 naming it, on anything else.
std::optional<uint64_t> ParseWholeInRange(std::string_view text, const std::string& name,
                                          uint64_t min, uint64_t max, ApiError* error);
// An unsigned decimal (a seq or a version); nullopt on anything else.
std::optional<uint64_t> ParseUnsigned(std::string_view text);

// --- validators (docs/DECISIONS.md, "Revalidation") ---
//
// A state read is a pure function of its URL and the seq its answer
// reflects, so that seq is its validator. The ETag of a state read at
// `seq`: "<seq>", or "<version>.<seq>" for a read of one entity, whose
// version stays readable for If-Match.
std::string StateTag(uint64_t seq, std::optional<uint64_t> version = std::nullopt);

// The version an If-Match header names: 7, "7", or an entity read's ETag
// "7.120" (its seq part is not compared: other entities' events move it).
// nullopt on anything else, weak tags included (If-Match compares strongly).
std::optional<uint64_t> ParseIfMatch(std::string_view header);

// Whether If-None-Match is "*" (any current answer).
bool IfNoneMatchAny(std::string_view header);

// Whether an If-None-Match list names `tag` (quoted, as StateTag makes
// it), by weak comparison (RFC 9110 §13.1.2: W/ is ignored, the opaque
// text must be the same). False when the list is malformed before it.
// Reads at most kMaxIfNoneMatchTags tags.
inline constexpr size_t kMaxIfNoneMatchTags = 64;
bool IfNoneMatchNames(std::string_view header, std::string_view tag);

}  // namespace okr::api
