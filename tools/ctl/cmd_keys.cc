// okrctl erase and the key store's backups (SPEC §10): erasing a person's
// personal data by deleting their key, offline or through okrd, and
// copying the key store apart from the log's backups.
#include <cassert>
#include <filesystem>
#include <iostream>

#include "eventstore/keystore.h"
#include "eventstore/sealing.h"
#include "tools/ctl/cmd_common.h"

namespace okr::ctl::cmd {
namespace {

using nlohmann::json;

void PrintErased(const std::string& subject, uint64_t seq, bool json_out) {
  if (json_out) {
    std::cout << json{{"subject", subject}, {"seq", seq}, {"erased", true}}.dump() << "\n";
  } else {
    std::cout << "erased " << subject << ": key deleted, subject.erased at seq " << seq << "\n";
  }
}

int EraseThroughServer(const EraseOptions& o) {
  auto client = Connect(o.server);
  if (!client.ok()) return Usage(client.status().message());
  HttpAnswer a =
      (*client)->Post("/v1/admin/erasures", {{"subject", o.subject}, {"reason", o.reason}});
  if (!a.ok()) return Fail("POST /v1/admin/erasures: " + a.Describe());
  PrintErased(o.subject, a.json.value("seq", uint64_t{0}), o.json_out);
  return kExitOk;
}

int EraseOffline(const EraseOptions& o) {
  OpenOptions options;
  options.create_if_missing = false;
  auto store = EventStore::Open(o.data_dir, options);
  if (!store.ok()) {
    return Fail("cannot open " + o.data_dir + ": " + store.status().ToString() +
                OpenHint(store.status()));
  }
  const std::string dir = o.keystore.empty() ? DefaultKeyStorePath(o.data_dir) : o.keystore;
  auto keys = KeyStore::Open(dir);
  if (!keys.ok()) return Fail(keys.status().message() + OpenHint(keys.status()));
  auto ring = KeyRing::Open(keys->get());
  if (!ring.ok()) return Fail(ring.status().message());
  auto seq = EraseSubject(store->get(), ring->get(), o.subject, o.actor, o.reason);
  if (!seq.ok()) return Fail(seq.status().message());
  PrintErased(o.subject, *seq, o.json_out);
  return kExitOk;
}

}  // namespace

int Erase(const EraseOptions& o) {
  // main checked: exactly one of --data and --server.
  assert(o.data_dir.empty() != o.server.empty());
  if (o.subject.empty() || o.reason.empty()) return Usage("erase needs --subject and --reason");
  return o.server.empty() ? EraseOffline(o) : EraseThroughServer(o);
}

int BackupKeys(const std::string& data_dir, const std::string& keystore, const std::string& to) {
  const std::string dir = keystore.empty() ? DefaultKeyStorePath(data_dir) : keystore;
  std::error_code ec;
  if (std::filesystem::exists(to, ec))
    return Fail(to + " exists: back the keys up into a new directory");
  auto keys = KeyStore::Open(dir);
  if (!keys.ok()) return Fail(keys.status().message() + OpenHint(keys.status()));
  if (Status s = (*keys)->Checkpoint(to); !s.ok()) return Fail(s.message());
  std::cout << "key store " << dir << " copied into " << to << "\n";
  return kExitOk;
}

int RestoreKeys(const std::string& from, const std::string& data_dir, const std::string& keystore) {
  const std::string dir = keystore.empty() ? DefaultKeyStorePath(data_dir) : keystore;
  std::error_code ec;
  if (std::filesystem::exists(dir, ec)) {
    return Fail(dir + " exists: move it away first (okrd stopped), then restore into its place");
  }
  {
    // Opening it checks it is a key store; its mode is checked too.
    auto keys = KeyStore::Open(from, /*read_only=*/true);
    if (!keys.ok())
      return Fail("cannot open the key-store backup " + from + ": " + keys.status().message());
  }
  std::filesystem::copy(from, dir, std::filesystem::copy_options::recursive, ec);
  if (ec) return Fail("cannot copy " + from + " into " + dir + ": " + ec.message());
  std::filesystem::permissions(dir, std::filesystem::perms::owner_all, ec);
  std::cout << "key store restored into " << dir
            << "; okrd deletes again, when it opens it, the keys the log records as erased\n";
  return kExitOk;
}

}  // namespace okr::ctl::cmd
