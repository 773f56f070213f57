// Review: the end-of-cycle review of a cycle's objectives, as JSON, and
// its rendering for people (Markdown) and spreadsheets (CSV).
//
// Pure functions: Review reads a Projection the caller keeps unchanged
// while it runs; the renderers read only the JSON they are given.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>

#include "projections/domain/projection.h"

namespace okr {

// The end-of-cycle review as of `as_of`: per objective computed score
// (progress at the cycle's end), reviewed score and outcome, key results
// with original and final targets, moved goalposts, check-in counts.
Result<nlohmann::json> Review(const Projection& projection, const std::string& cycle,
                              uint64_t as_of);
// The same review rendered for people (Markdown) and spreadsheets (CSV).
std::string ReviewMarkdown(const nlohmann::json& review);
std::string ReviewCsv(const nlohmann::json& review);

}  // namespace okr
