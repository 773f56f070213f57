// bench_projections: how fast the log folds into state, and how fast that
// state answers, side by side with the raw replay ceiling in one run.
//
//   bench_projections [--events N] [--quick] [--dir PARENT]
//                     [--rebuild-only | --cascade-only | --sealing]
//
// Builds a log of N events (default 1,000,000) for an organisation of 5,000
// people in 200 teams and 10 departments, 2,000 objectives with 3 key
// results each, and check-ins for the rest; then measures:
//   a) raw replay: EventStore::Scan + DecodedEvent::Decode (the ceiling);
//   b) full rebuild: the same events folded into a Projection;
//   c) resident memory of the process holding that projection;
//   d) state at 200 random seqs: through the live temporal projection (what
//      okrd serves: one objective and its key results as of the seq), and
//      through the newest snapshot at or before the seq plus a replay of the
//      tail (what a restart does), with snapshots every 10,000 events;
//   e) the cascade of the whole organisation (current, and as of random seqs),
//      and, of the current one, what its plan, its roll-ups and its rows
//      cost before any JSON is written.
// --rebuild-only and --cascade-only measure b) or e) alone, for profiling.
// --sealing builds the log twice, as it is and with the personal fields
// sealed (SPEC §10: persons' names under their keys, every check-in's note
// under its author's), and measures the append and the rebuild of each
// (the best of three), side by side, with the raw replay of each as its
// ceiling.
// The program runs with okrd's heap policy (api/heap.h: when freed memory
// goes back), as okrd does, and folds a whole log with the heap grown at
// once, as okrd's start does.
// A program, not a test: it prints figures (docs/BENCHMARKS.md).
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "api/heap.h"
#include "eventstore/base/time.h"
#include "eventstore/event_store.h"
#include "eventstore/keystore.h"
#include "eventstore/sealing.h"
#include "projections/read/views.h"
#include "projections/service/projector.h"
#include "projections/service/snapshot.h"

namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// CPU seconds of the calling thread (CLOCK_THREAD_CPUTIME_ID) or of the
// whole process (CLOCK_PROCESS_CPUTIME_ID): on a shared machine they move
// less than the wall time when other work takes the cores.
double CpuSeconds(clockid_t clock) {
  timespec ts{};
  clock_gettime(clock, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

void Check(const okr::Status& s, const char* what) {
  if (!s.ok()) {
    std::fprintf(stderr, "bench_projections: %s: %s\n", what, s.ToString().c_str());
    std::exit(1);
  }
}

// A whole log folded as okrd's start folds it: with the heap grown at once
// for a log of `head` events and faulted in on a second thread.
auto RebuildAsOkrdStarts(const okr::EventStore& store, uint64_t head) {
  okr::api::HeapForLoad heap(head);
  return okr::Projector::Rebuild(store, head, false);
}

long ResidentKb() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
  }
  return 0;
}

struct Percentiles {
  double p50_ms, p99_ms;
};

Percentiles Summarise(std::vector<double> seconds) {
  std::sort(seconds.begin(), seconds.end());
  auto at = [&](double q) {
    size_t i =
        std::min(seconds.size() - 1, static_cast<size_t>(q * static_cast<double>(seconds.size())));
    return seconds[i] * 1000;
  };
  return {at(0.5), at(0.99)};
}

// Appends drafts in requests of 1,000 events.
class LogBuilder {
 public:
  explicit LogBuilder(okr::EventStore* store) : store_(store) {}
  // `fill` gets the draft, whose union member it chooses first.
  template <typename Fill>
  void Event(const std::string& entity, Fill fill) {
    okr::EventDraft draft("bench", entity);
    fill(draft);
    pending_.events.push_back(std::move(draft));
    if (pending_.events.size() == okr::kMaxEventsPerAppend) Flush();
  }
  void Flush() {
    if (pending_.events.empty()) return;
    auto r = store_->Append(std::move(pending_));
    Check(r.status(), "append");
    pending_ = okr::AppendRequest{};
  }

 private:
  okr::EventStore* store_;
  okr::AppendRequest pending_;
};

struct Org {
  std::vector<std::string> objectives, key_results;
};

// `sealed`: persons' names under their own keys, check-in notes under
// their authors' (the store seals them when it has a key ring).
Org BuildLog(okr::EventStore* store, uint64_t total_events, bool sealed = false) {
  using PF = okr::schema::PersonalField;
  LogBuilder b(store);
  Org org;
  auto unit = [&](const std::string& id, okr::schema::UnitKind kind, const std::string& parent) {
    b.Event(id, [&](okr::EventDraft& d) {
      auto u = d.event().initUnitCreated();
      u.setKind(kind);
      u.setParent(parent);
      const bool personal = sealed && kind == okr::schema::UnitKind::PERSON;
      d.SetPersonal(PF::NAME, "Unit " + id, personal ? id : "");
    });
  };
  unit("acme", okr::schema::UnitKind::COMPANY, "");
  std::vector<std::string> teams, people;
  for (int d = 0; d < 10; ++d) {
    std::string dept = "dept-" + std::to_string(d);
    unit(dept, okr::schema::UnitKind::DEPARTMENT, "acme");
    for (int t = 0; t < 20; ++t) {
      std::string team = dept + ".team-" + std::to_string(t);
      unit(team, okr::schema::UnitKind::TEAM, dept);
      teams.push_back(team);
      for (int p = 0; p < 25; ++p) {
        std::string person = team + ".p" + std::to_string(p);
        unit(person, okr::schema::UnitKind::PERSON, team);
        people.push_back(person);
      }
    }
  }
  b.Event("2026", [](okr::EventDraft& d) {
    auto c = d.event().initCycleCreated();
    c.setName("2026");
    c.setStarts("2026-01-01");
    c.setEnds("2026-12-31");
  });
  std::mt19937_64 rng(42);
  for (int i = 0; i < 2000; ++i) {
    std::string id = "obj-" + std::to_string(i);
    std::string owner = i < 200 ? teams[i] : people[rng() % people.size()];
    std::string parent = i < 200 ? "" : "obj-" + std::to_string(rng() % 200);
    b.Event(id, [&](okr::EventDraft& d) {
      auto o = d.event().initObjectiveCreated();
      o.setCycle("2026");
      o.setOwner(owner);
      o.setTitle("Objective number " + std::to_string(i) + " of the year");
      if (!parent.empty()) o.initParents(1).set(0, parent);
    });
    org.objectives.push_back(id);
    for (int k = 0; k < 3; ++k) {
      std::string kr = id + ".kr" + std::to_string(k);
      b.Event(kr, [&](okr::EventDraft& d) {
        auto r = d.event().initKeyResultAdded();
        r.setObjective(id);
        r.setTitle("Key result " + std::to_string(k));
        r.setMetric(okr::schema::Metric::NUMBER);
        r.setStart(0);
        r.setTarget(100);
        r.setWeight(1);
      });
      org.key_results.push_back(kr);
    }
  }
  int64_t measured = *okr::ParseDate("2026-01-05");
  // Units, the cycle, objectives and key results: the rest are check-ins.
  const uint64_t frame = 1 + 10 + 200 + 5000 + 1 + 2000 * 4;
  for (uint64_t i = 0; frame + i < total_events; ++i) {
    const std::string& kr = org.key_results[rng() % org.key_results.size()];
    measured += 1'000'000;
    b.Event(kr, [&](okr::EventDraft& d) {
      auto c = d.event().initCheckInRecorded();
      c.setCheckIn("ci-" + std::to_string(i));
      c.setValue(static_cast<double>(rng() % 100));
      c.setMeasuredAt(measured);
      d.SetPersonal(PF::NOTE, "weekly check-in", sealed ? people[i % people.size()] : "");
    });
  }
  b.Flush();
  return org;
}

// Seconds to answer objective `o` and its key results as of `seq`, as okrd
// serves GET /v1/objectives/{id}?as_of= from the live temporal projection.
double ObjectiveAsOf(const okr::Projection& full, const okr::Objective& o, uint64_t seq) {
  auto t = Clock::now();
  okr::View v(full, seq, INT64_MAX, 0);
  if (o.At(seq)) {
    auto j = v.ObjectiveJson(o);
    (void)j;
  }
  return Seconds(t);
}

// 200 random objectives, each as of a random seq.
Percentiles LiveAsOf(const okr::Projection& full, const Org& org, uint64_t head) {
  std::mt19937_64 rng(7);
  std::vector<double> live;
  for (int i = 0; i < 200; ++i) {
    uint64_t seq = 1 + rng() % head;
    live.push_back(
        ObjectiveAsOf(full, *full.objective(org.objectives[rng() % org.objectives.size()]), seq));
  }
  return Summarise(live);
}

// The cascade of cycle 2026 as GET /v1/cascade serves it: planned, then
// written in pieces to a sink; the bytes written (0 at a seq before the
// cycle existed, which okrd answers 404).
size_t ServedCascade(okr::View view) {
  auto plan = okr::CascadePlan::Make(view, "2026", "", std::nullopt);
  if (!plan.ok()) return 0;
  size_t bytes = 0;
  okr::JsonOut out([&](std::string_view piece) { bytes += piece.size(); });
  plan->Write(view, out, view.as_of());
  out.Flush();
  return bytes;
}

// What the served cascade costs before its JSON: each step also does the
// ones before it, on a fresh View, so the differences of their times are
// the costs of the steps.
enum class CascadeStep { kPlan, kRollUps, kRows };
void CascadeUpTo(const okr::Projection& full, CascadeStep last) {
  okr::View view(full, full.seq(), INT64_MAX, 0);
  auto plan = okr::CascadePlan::Make(view, "2026", "", std::nullopt);
  Check(plan.status(), "plan");
  if (last == CascadeStep::kPlan) return;
  // The roll-ups: every objective's progress (a unit's is a sum of them).
  const auto objectives = view.Objectives({"2026", "", false});
  double sum = 0;
  for (const okr::Objective* o : objectives) sum += view.ObjectiveProgress(*o);
  if (!(sum >= 0)) std::abort();  // progress is never negative
  if (last == CascadeStep::kRollUps) return;
  // The rows the answer writes (borrowed, as it writes them), built and dropped.
  size_t rows = 0;
  for (const okr::Objective* o : objectives)
    rows += view.ObjectiveRowOf<okr::Hold::kBorrowed>(*o).key_results.size();
  for (const auto& [id, unit] : full.units())
    rows += !view.UnitRowOf<okr::Hold::kBorrowed>(unit).id.empty();
  if (rows == 0) std::abort();
}

// Section e: the served cascade (current, 30 times) and its steps.
void CascadeSection(const okr::Projection& full, const Org& org, Percentiles as_of) {
  std::vector<double> served, plan, roll_ups, rows;
  size_t bytes = 0;
  for (int i = 0; i < 30; ++i) {
    auto t = Clock::now();
    bytes = ServedCascade(okr::View(full, full.seq(), INT64_MAX, 0));
    served.push_back(Seconds(t));
    t = Clock::now();
    CascadeUpTo(full, CascadeStep::kPlan);
    plan.push_back(Seconds(t));
    t = Clock::now();
    CascadeUpTo(full, CascadeStep::kRollUps);
    roll_ups.push_back(Seconds(t));
    t = Clock::now();
    CascadeUpTo(full, CascadeStep::kRows);
    rows.push_back(Seconds(t));
  }
  auto cn = Summarise(served), pl = Summarise(plan), ru = Summarise(roll_ups), rw = Summarise(rows);
  std::printf("\ne) cascade: %zu people, %zu objectives, %zu key results (%.1f MB of JSON)\n",
              size_t{5000}, org.objectives.size(), org.key_results.size(), bytes / 1e6);
  std::printf("   current, served                     %10.3f %10.3f\n", cn.p50_ms, cn.p99_ms);
  if (as_of.p50_ms >= 0) {
    std::printf("   as of random seqs, served           %10.3f %10.3f\n", as_of.p50_ms,
                as_of.p99_ms);
  }
  std::printf("   of the current one, p50 ms: plan %.3f, roll-ups %.3f, rows %.3f, JSON %.3f\n",
              pl.p50_ms, ru.p50_ms - pl.p50_ms, rw.p50_ms - ru.p50_ms, cn.p50_ms - rw.p50_ms);
}

}  // namespace

// --sealing: one build of the log (plain or sealed) and what it costs.
struct SealingRun {
  double append = 0, raw = 0, rebuild = 0;  // events/s
};

SealingRun MeasureLog(const std::string& dir, uint64_t events, bool sealed) {
  std::unique_ptr<okr::KeyStore> keys;
  std::unique_ptr<okr::KeyRing> ring;
  okr::OpenOptions options;
  if (sealed) {
    auto k = okr::KeyStore::Open(dir + ".keys");
    Check(k.status(), "key store");
    keys = std::move(*k);
    auto r = okr::KeyRing::Open(keys.get());
    Check(r.status(), "key ring");
    ring = std::move(*r);
    options.key_ring = ring.get();
  }
  SealingRun run;
  {
    auto store = okr::EventStore::Open(dir, options);
    Check(store.status(), "open");
    auto start = Clock::now();
    BuildLog(store->get(), events, sealed);
    const uint64_t head = (*store)->head().seq;
    run.append = static_cast<double>(head) / Seconds(start);
    // The replays can be repeated: the best of three of each.
    for (int pass = 0; pass < 3; ++pass) {
      start = Clock::now();
      Check((*store)->Scan(1, head,
                           [&](uint64_t, std::string_view bytes) {
                             return okr::DecodedEvent::Decode(bytes).ok();
                           }),
            "scan");
      run.raw = std::max(run.raw, static_cast<double>(head) / Seconds(start));
      start = Clock::now();
      auto rebuilt = RebuildAsOkrdStarts(**store, head);
      Check(rebuilt.status(), "rebuild");
      run.rebuild = std::max(run.rebuild, static_cast<double>(head) / Seconds(start));
    }
  }
  std::filesystem::remove_all(dir);
  std::filesystem::remove_all(dir + ".keys");
  // The next build must not pay for writing this one back: hundreds of MB
  // of its table files may still be dirty in the page cache.
  ::sync();
  return run;
}

// Plain and sealed builds, two rounds, each round in the other order (the
// first build of a process runs on a colder heap); each one's best.
void SealingSection(const std::string& dir, uint64_t events) {
  SealingRun best[2];
  std::printf("%-8s %14s %14s %14s\n", "log", "append ev/s", "raw ev/s", "rebuild ev/s");
  ::sync();
  for (int round = 0; round < 2; ++round) {
    for (int k = 0; k < 2; ++k) {
      const int sealed = k ^ round;
      SealingRun r = MeasureLog(dir, events, sealed == 1);
      std::printf("%-8s %14.0f %14.0f %14.0f\n", sealed ? "sealed" : "plain", r.append, r.raw,
                  r.rebuild);
      best[sealed].append = std::max(best[sealed].append, r.append);
      best[sealed].raw = std::max(best[sealed].raw, r.raw);
      best[sealed].rebuild = std::max(best[sealed].rebuild, r.rebuild);
    }
  }
  std::printf("sealed / plain, best of each: append %.2f, raw %.2f, rebuild %.2f\n",
              best[1].append / best[0].append, best[1].raw / best[0].raw,
              best[1].rebuild / best[0].rebuild);
}

int main(int argc, char** argv) {
  uint64_t events = 1'000'000;
  bool rebuild_only = false;  // for profiling the fold alone
  bool cascade_only = false;  // for profiling the cascade alone
  bool sealing = false;       // plain against sealed
  std::string parent = std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp";
  okr::api::SetHeapPolicy();  // as okrd
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--quick")
      events = 100'000;
    else if (a == "--events" && i + 1 < argc)
      events = std::strtoull(argv[++i], nullptr, 10);
    else if (a == "--dir" && i + 1 < argc)
      parent = argv[++i];
    else if (a == "--rebuild-only")
      rebuild_only = true;
    else if (a == "--cascade-only")
      cascade_only = true;
    else if (a == "--sealing")
      sealing = true;
    else {
      std::fprintf(stderr,
                   "usage: bench_projections [--events N] [--quick] [--dir PARENT]"
                   " [--rebuild-only | --cascade-only | --sealing]\n");
      return 2;
    }
  }
  std::string dir = parent + "/bench-projections-" + std::to_string(getpid());
  std::filesystem::remove_all(dir);
  if (sealing) {
    SealingSection(dir, events);
    return 0;
  }
  long rss_start = ResidentKb();
  {
    auto store = okr::EventStore::Open(dir);
    Check(store.status(), "open");
    auto start = Clock::now();
    Org org = BuildLog(store->get(), events);
    uint64_t head = (*store)->head().seq;
    std::printf("log: %llu events built in %.1f s\n", static_cast<unsigned long long>(head),
                Seconds(start));

    // a) raw replay ceiling.
    start = Clock::now();
    uint64_t decoded = 0;
    Check((*store)->Scan(1, head,
                         [&](uint64_t, std::string_view bytes) {
                           auto d = okr::DecodedEvent::Decode(bytes);
                           decoded += d.ok();
                           return true;
                         }),
          "scan");
    double raw = static_cast<double>(decoded) / Seconds(start);

    // b) full rebuild.
    long rss_before = ResidentKb();
    start = Clock::now();
    const double fold_cpu = CpuSeconds(CLOCK_THREAD_CPUTIME_ID);
    const double all_cpu = CpuSeconds(CLOCK_PROCESS_CPUTIME_ID);
    auto rebuilt = RebuildAsOkrdStarts(**store, head);
    Check(rebuilt.status(), "rebuild");
    double rebuild = static_cast<double>(head) / Seconds(start);
    const double fold_us =
        (CpuSeconds(CLOCK_THREAD_CPUTIME_ID) - fold_cpu) * 1e6 / static_cast<double>(head);
    const double all_us =
        (CpuSeconds(CLOCK_PROCESS_CPUTIME_ID) - all_cpu) * 1e6 / static_cast<double>(head);
    // What the heap grown for the load left unused goes back, as it does in
    // okrd at the heap's next free: the projection's own pages remain.
    okr::api::ReturnFreePages();
    long rss_after = ResidentKb();
    if (rebuild_only) {
      std::printf(
          "rebuild: %.0f events/s (raw %.0f); CPU per event: fold's thread %.3f us, "
          "all threads %.3f us\n",
          rebuild, raw, fold_us, all_us);
      std::printf("projection: %.0f bytes per event resident\n",
                  (rss_after - rss_before) * 1024.0 / static_cast<double>(head));
      auto live = LiveAsOf(*rebuilt, org, head);
      std::printf("objective as of a random seq: p50 %.3f ms, p99 %.3f ms\n", live.p50_ms,
                  live.p99_ms);
      std::filesystem::remove_all(dir);
      return 0;
    }
    if (cascade_only) {
      CascadeSection(*rebuilt, org, {-1, -1});
      std::filesystem::remove_all(dir);
      return 0;
    }
    std::printf("\n%-52s %14s %8s\n", "measurement", "events/s", "ratio");
    std::printf("%-52s %14.0f %8s\n", "a) raw replay: scan + decode (ceiling)", raw, "1.00");
    std::printf("%-52s %14.0f %8.2f\n", "b) full rebuild into a projection", rebuild,
                rebuild / raw);
    std::printf(
        "\nc) resident memory: %.0f MiB with the projection of %llu events "
        "(%.0f MiB for the projection itself; %.0f MiB at start)\n",
        rss_after / 1024.0, static_cast<unsigned long long>(head),
        (rss_after - rss_before) / 1024.0, rss_start / 1024.0);

    // Snapshots every 10,000 events, all kept, for the snapshot + tail path.
    start = Clock::now();
    okr::Projection p;
    okr::Hash hash{};
    size_t snapshots = 0;
    Check((*store)->Scan(1, head,
                         [&](uint64_t seq, std::string_view bytes) {
                           auto d = okr::DecodedEvent::Decode(bytes);
                           Check(p.Apply((*d)->event()), "apply");
                           hash = okr::Sha256(bytes);
                           if (seq % 10'000 == 0) {
                             Check((*store)->PutSnapshot(seq, okr::SnapshotCodec::Encode(p, hash),
                                                         SIZE_MAX),
                                   "snapshot");
                             ++snapshots;
                           }
                           return true;
                         }),
          "snapshots");
    std::printf("\n%zu snapshots written in %.1f s\n", snapshots, Seconds(start));

    // d) state at random seqs.
    std::mt19937_64 rng(7);
    std::vector<double> live, restart, cascade_past;
    const okr::Projection& full = *rebuilt;
    for (int i = 0; i < 200; ++i) {
      uint64_t seq = 1 + rng() % head;
      const okr::Objective* o = full.objective(org.objectives[rng() % org.objectives.size()]);
      live.push_back(ObjectiveAsOf(full, *o, seq));
      if (i < 50) {
        auto t = Clock::now();
        auto r = okr::Projector::Rebuild(**store, seq, true);
        Check(r.status(), "rebuild at seq");
        restart.push_back(Seconds(t));
        t = Clock::now();
        ServedCascade(okr::View(full, seq, INT64_MAX, 0));
        cascade_past.push_back(Seconds(t));
      }
    }
    auto l = Summarise(live), r = Summarise(restart), cp = Summarise(cascade_past);
    std::printf("\nd) state at random seqs %20s %10s\n", "p50 ms", "p99 ms");
    std::printf("   objective as of seq (live temporal) %10.3f %10.3f\n", l.p50_ms, l.p99_ms);
    std::printf("   snapshot + tail replay to seq       %10.3f %10.3f\n", r.p50_ms, r.p99_ms);

    // e) cascade of the whole org, as okrd serves it: planned, then JSON
    // written in pieces (here to a sink that only counts them).
    CascadeSection(full, org, cp);
  }
  std::filesystem::remove_all(dir);
  return 0;
}
