// Writing a validated import: the lane runner that orders and overlaps
// the commands, and the two writers that carry each one, offline through
// Projector::Write and online through okrd's HTTP API.
#include <algorithm>
#include <cassert>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "api/routes/routes.h"
#include "eventstore/base/time.h"
#include "tools/ctl/import_internal.h"

namespace okr::ctl {

using import_internal::Part;
using nlohmann::json;

namespace {

// Runs the commands validation kept, several at a time, in an order that
// gives the state validation judged: units and cycles first, one by one;
// then one lane per objective (the objective, its key results in file
// order, their check-ins), lanes side by side, each objective after the
// objectives of the same import it aligns to; cycles are closed last.
// Concurrent appends share the store's group commit, which is where the
// speed comes from. `run(i)` writes command i and may be called from
// several threads at once; the first failure stops new work, and
// commands already written stay.
class LaneRunner {
 public:
  LaneRunner(const ImportPlan& plan, const Validation& validation)
      : plan_(plan), skip_(validation.skip) {
    assert(skip_.size() == plan_.commands.size());
  }

  // Returns the index of the first command that failed, or nullopt.
  std::optional<size_t> Run(size_t workers, const std::function<bool(size_t)>& run,
                            const std::function<void(size_t)>& progress) {
    std::vector<size_t> frame, closes;
    BuildLanes(&frame, &closes);
    done_.assign(plan_.commands.size(), false);
    for (size_t i = 0; i < skip_.size(); ++i) done_[i] = skip_[i];
    // The frame first and the closes last, each in order: they are few.
    for (size_t i : frame) {
      if (!run(i)) return i;
      done_[i] = true;
      if (progress) progress(++completed_);
    }
    if (auto failed = RunLanes(workers, run, progress)) return failed;
    for (size_t i : closes) {
      if (!run(i)) return i;
      if (progress) progress(++completed_);
    }
    return std::nullopt;
  }

 private:
  struct Lane {
    std::vector<size_t> commands;
    size_t next = 0;
  };

  // Sorts the commands to write into the frame, the lanes (with each
  // objective's dependencies on those it aligns to) and the closes.
  void BuildLanes(std::vector<size_t>* frame, std::vector<size_t>* closes) {
    std::map<std::string, size_t> lane_of;               // lane key → lane
    std::unordered_map<std::string, size_t> created_by;  // objective / key result id → command
    for (size_t i = 0; i < plan_.commands.size(); ++i) {
      const PlannedCommand& c = plan_.commands[i];
      if (const auto* o = std::get_if<CreateObjective>(&c.command)) created_by[o->id] = i;
      if (const auto* k = std::get_if<CreateKeyResult>(&c.command)) created_by[k->id] = i;
    }
    deps_.assign(plan_.commands.size(), {});
    auto lane = [&](const std::string& key) -> Lane& {
      auto [it, fresh] = lane_of.emplace(key, lanes_.size());
      if (fresh) lanes_.emplace_back();
      return lanes_[it->second];
    };
    for (size_t i = 0; i < plan_.commands.size(); ++i) {
      if (skip_[i]) continue;
      const PlannedCommand& c = plan_.commands[i];
      switch (c.part) {
        case Part::kUnit:
        case Part::kCycle:
          frame->push_back(i);
          continue;
        case Part::kCloseCycle:
          closes->push_back(i);
          continue;
        case Part::kObjective: {
          const auto& o = std::get<CreateObjective>(c.command);
          for (const auto& parent : o.parents) {
            if (auto it = created_by.find(parent); it != created_by.end())
              deps_[i].push_back(it->second);
          }
          lane("o:" + o.id).commands.push_back(i);
          continue;
        }
        case Part::kKeyResult:
          lane("o:" + std::get<CreateKeyResult>(c.command).objective).commands.push_back(i);
          continue;
        case Part::kCheckIn: {
          // With its key result's objective when this import creates it.
          const std::string& kr = std::get<RecordCheckIn>(c.command).key_result;
          auto it = created_by.find(kr);
          std::string key = "k:" + kr;
          if (it != created_by.end())
            key = "o:" + std::get<CreateKeyResult>(plan_.commands[it->second].command).objective;
          lane(key).commands.push_back(i);
          continue;
        }
      }
    }
  }

  // Lock held. Queues lane l when its next command can run, else parks it
  // on the dependency it waits for.
  void Schedule(size_t l) {
    Lane& lane = lanes_[l];
    if (lane.next == lane.commands.size()) return;
    for (size_t dep : deps_[lane.commands[lane.next]]) {
      if (!done_[dep]) {
        waiting_[dep].push_back(l);
        return;
      }
    }
    ready_.push_back(l);
  }

  // Lock held, after lane l's next command `i` was written: the lane and
  // the lanes waiting on `i` move on.
  void Advance(size_t l, size_t i, const std::function<void(size_t)>& progress) {
    assert(lanes_[l].commands[lanes_[l].next] == i);
    done_[i] = true;
    ++lanes_[l].next;
    if (progress) progress(++completed_);
    Schedule(l);
    if (auto it = waiting_.find(i); it != waiting_.end()) {
      for (size_t waiting_lane : it->second) Schedule(waiting_lane);
      waiting_.erase(it);
    }
  }

  std::optional<size_t> RunLanes(size_t workers, const std::function<bool(size_t)>& run,
                                 const std::function<void(size_t)>& progress) {
    size_t remaining = 0;
    for (const Lane& lane : lanes_) remaining += lane.commands.size();
    if (remaining == 0) return std::nullopt;
    for (size_t l = 0; l < lanes_.size(); ++l) Schedule(l);
    std::optional<size_t> failed;
    size_t in_flight = 0;
    auto work = [&] {
      std::unique_lock<std::mutex> lock(mu_);
      for (;;) {
        cv_.wait(lock, [&] {
          return !ready_.empty() || remaining == 0 || (failed && in_flight == 0) ||
                 (ready_.empty() && in_flight == 0);
        });
        if (failed || remaining == 0 || ready_.empty()) {
          cv_.notify_all();
          return;
        }
        size_t l = ready_.front();
        ready_.pop_front();
        size_t i = lanes_[l].commands[lanes_[l].next];
        ++in_flight;
        lock.unlock();
        bool ok = run(i);
        lock.lock();
        --in_flight;
        if (ok) {
          --remaining;
          Advance(l, i, progress);
        } else if (!failed || i < *failed) {
          failed = i;
        }
        cv_.notify_all();
      }
    };
    std::vector<std::thread> threads;
    for (size_t t = 1; t < std::max<size_t>(workers, 1); ++t) threads.emplace_back(work);
    work();
    for (auto& t : threads) t.join();
    if (!failed && remaining > 0) return FirstUnwritten();
    return failed;
  }

  // Unreachable while dependencies point backwards in the plan; should it
  // happen, the first command left unwritten is named.
  std::optional<size_t> FirstUnwritten() const {
    for (const Lane& lane : lanes_) {
      if (lane.next < lane.commands.size()) return lane.commands[lane.next];
    }
    return std::nullopt;
  }

  const ImportPlan& plan_;
  const std::vector<bool>& skip_;
  std::vector<std::vector<size_t>> deps_;
  std::vector<Lane> lanes_;
  std::vector<bool> done_;
  std::deque<size_t> ready_;
  std::unordered_map<size_t, std::vector<size_t>> waiting_;
  size_t completed_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
};

void Record(ImportWriteResult* result, std::mutex* mu, uint64_t seq) {
  std::lock_guard<std::mutex> lock(*mu);
  if (result->first_seq == 0 || seq < result->first_seq) result->first_seq = seq;
  result->last_seq = std::max(result->last_seq, seq);
  ++result->written;
}

// Clients for the online writers. One is never shared: each command
// takes an idle one (or connects a new one, so there are at most as many
// as writers) and gives it back; all close with the pool. Thread-safe.
class ClientPool {
 public:
  explicit ClientPool(const std::function<Result<std::unique_ptr<Client>>()>& connect)
      : connect_(connect) {}

  Result<std::unique_ptr<Client>> Take() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!idle_.empty()) {
        std::unique_ptr<Client> client = std::move(idle_.back());
        idle_.pop_back();
        return client;
      }
    }
    return connect_();
  }

  void Give(std::unique_ptr<Client> client) {
    assert(client);
    std::lock_guard<std::mutex> lock(mu_);
    idle_.push_back(std::move(client));
  }

 private:
  const std::function<Result<std::unique_ptr<Client>>()>& connect_;
  std::mutex mu_;
  std::vector<std::unique_ptr<Client>> idle_;
};

// The field okrd's error names ({"error": {"field": …}}), or "".
std::string ErrorField(const HttpAnswer& a) {
  if (a.json.is_object() && a.json.contains("error") && a.json["error"].is_object() &&
      a.json["error"].contains("field") && a.json["error"]["field"].is_string()) {
    return a.json["error"]["field"].get<std::string>();
  }
  return "";
}

}  // namespace

bool WriteOffline(const ImportPlan& plan, const Validation& validation, Projector* projector,
                  const std::string& actor, size_t writers,
                  const std::function<void(size_t)>& progress, ImportWriteResult* result,
                  ImportError* error) {
  *result = ImportWriteResult();
  std::mutex mu;
  std::vector<Status> failures(plan.commands.size());
  LaneRunner runner(plan, validation);
  auto failed = runner.Run(
      writers,
      [&](size_t i) {
        WriteRequest w;
        w.command = plan.commands[i].command;
        w.actor = actor;
        w.reason = plan.Reason(i);
        w.idempotency_key = plan.IdempotencyKey(i);
        w.fingerprint = Sha256(w.idempotency_key);
        auto written = projector->Write(w);
        if (!written.ok()) {
          std::lock_guard<std::mutex> lock(mu);
          failures[i] = written.status();
          return false;
        }
        if (written->changed && !written->replayed) Record(result, &mu, written->seq);
        return true;
      },
      progress);
  if (failed) {
    const Status& s = failures[*failed];
    *error = {plan.file, plan.Locate(*failed, s.field()), s.ok() ? "not written" : s.message()};
    return false;
  }
  assert(result->written <= validation.to_write);
  return true;
}

bool WriteOnline(const ImportPlan& plan, const Validation& validation,
                 const std::function<Result<std::unique_ptr<Client>>()>& connect, size_t writers,
                 const std::function<void(size_t)>& progress, ImportWriteResult* result,
                 ImportError* error) {
  *result = ImportWriteResult();
  std::mutex mu;
  std::vector<std::string> failures(plan.commands.size()), fields(plan.commands.size());
  auto failed = std::optional<size_t>();
  {
    ClientPool pool(connect);
    LaneRunner runner(plan, validation);
    failed = runner.Run(
        writers,
        [&](size_t i) {
          auto client = pool.Take();
          if (!client.ok()) {
            std::lock_guard<std::mutex> lock(mu);
            failures[i] = client.status().message();
            return false;
          }
          api::RenderedCommand h = api::RenderCommand(plan.commands[i].command, plan.Reason(i));
          // Every command an import plans is a create, a check-in or a close: all POSTs.
          assert(h.method == "POST");
          HttpAnswer a = (*client)->Post(h.path, h.body, plan.IdempotencyKey(i));
          pool.Give(std::move(client.value()));
          if (!a.ok()) {
            std::lock_guard<std::mutex> lock(mu);
            failures[i] = "okrd refused it: " + a.Describe();
            fields[i] = ErrorField(a);
            return false;
          }
          uint64_t seq = a.json.is_object() && a.json["seq"].is_number_unsigned()
                             ? a.json["seq"].get<uint64_t>()
                             : 0;
          Record(result, &mu, seq);
          return true;
        },
        progress);
  }
  if (failed) {
    *error = {plan.file, plan.Locate(*failed, fields[*failed]),
              failures[*failed].empty() ? "not written" : failures[*failed]};
    return false;
  }
  return true;
}

}  // namespace okr::ctl
