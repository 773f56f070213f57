// Read models: the projection as the API shows it, as of any seq.
//
// The umbrella of the read models, each with its own header:
//   view.h    the View (rows, progress, cascade, lint) and their JSON
//   diff.h    what changed between two seqs
//   review.h  the end-of-cycle review, as JSON, Markdown and CSV
//   search.h  objectives found by the words of a search
#pragma once

#include "projections/read/diff.h"
#include "projections/read/review.h"
#include "projections/read/search.h"
#include "projections/read/view.h"
