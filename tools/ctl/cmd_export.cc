// okrctl export: one cycle's OKRs from a data directory or a running okrd,
// in the formats import reads (tools/ctl/export.h renders them).
#include <cassert>
#include <fstream>
#include <iostream>

#include "eventstore/event_codec.h"
#include "projections/service/projector.h"
#include "tools/ctl/cmd_common.h"
#include "tools/ctl/export.h"
#include "tools/ctl/progress.h"

namespace okr::ctl::cmd {
namespace {

// How often the scan redraws its bar: per event would cost more than the fold.
constexpr uint64_t kProgressEveryEvents = 4096;

// The projection as of `as_of` (≤ the head): the snapshot, then the events
// after it, with progress.
Result<Projection> LoadProjection(const EventStore& store, uint64_t as_of, bool tty) {
  Projection p = Projector::LoadSnapshot(store, as_of).value_or(Projection());
  ProgressBar bar("reading the log", as_of, tty, "events");
  Status failed = Status::Ok();
  Status s = store.Scan(p.seq() + 1, as_of, [&](uint64_t seq, std::string_view bytes) {
    auto decoded = DecodedEvent::Decode(bytes);
    failed = decoded.ok() ? p.Apply((*decoded)->event()) : decoded.status();
    if (seq % kProgressEveryEvents == 0) bar.Update(seq);
    return failed.ok();
  });
  bar.Update(p.seq());
  bar.Finish();
  OKR_RETURN_IF_ERROR(s);
  OKR_RETURN_IF_ERROR(failed);
  if (p.seq() != as_of) return Status::Corruption("the log ends at seq " + std::to_string(p.seq()));
  return p;
}

// The export's documents from okrd; an exit code when the URL is unusable.
int CollectOnline(const ExportOptions& o, bool tty, Result<ExportInput>* input) {
  auto client = Connect(o.server);
  if (!client.ok()) return Usage(client.status().message());
  ProgressBar bar("reading check-ins", 0, tty, "key results");
  *input = CollectFromServer(**client, o.cycle, o.as_of, o.format == "json",
                             [&](size_t done, size_t total) {
                               bar.set_total(total);
                               bar.Update(done);
                             });
  return kExitOk;
}

// The export's documents from a data directory; an exit code on failure.
int CollectOffline(const ExportOptions& o, bool tty, Result<ExportInput>* input) {
  auto store = OpenForReading(o.data_dir);
  if (!store.ok()) return Fail("cannot open " + o.data_dir + ": " + store.status().ToString());
  uint64_t head = (*store)->head().seq;
  uint64_t as_of = o.as_of.value_or(head);
  if (as_of > head) {
    return Fail("--as-of " + std::to_string(as_of) + " is beyond the head seq " +
                std::to_string(head));
  }
  auto p = LoadProjection(**store, as_of, tty);
  if (!p.ok()) return Fail("cannot read " + o.data_dir + ": " + p.status().ToString());
  *input = CollectFromProjection(*p, o.cycle, as_of, o.format == "json");
  return kExitOk;
}

}  // namespace

int Export(const ExportOptions& o) {
  // main checked: exactly one source, and a format import reads.
  assert(o.data_dir.empty() != o.server.empty());
  assert(o.format == "csv" || o.format == "json");
  const bool tty = ProgressBar::Terminal();
  Result<ExportInput> input = Status::NotFound("nothing collected");
  int rc = o.server.empty() ? CollectOffline(o, tty, &input) : CollectOnline(o, tty, &input);
  if (rc != kExitOk) return rc;
  if (!input.ok()) return Fail(input.status().message());
  std::string text = o.format == "json" ? RenderJson(*input) : RenderCsv(*input);
  if (o.output.empty() || o.output == "-") {
    std::cout << text;
    std::cout.flush();
    return std::cout.good() ? kExitOk : kExitFailed;
  }
  std::ofstream out(o.output, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) return Fail("cannot write " + o.output);
  // The file holds the export; what it is goes to stderr, as progress does.
  std::cerr << "exported cycle " << o.cycle << " as of seq " << input->as_of_seq << " ("
            << input->objectives.size() << " objectives) to " << o.output << "\n";
  return kExitOk;
}

}  // namespace okr::ctl::cmd
