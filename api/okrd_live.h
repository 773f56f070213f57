// okrd's flags and start-up for what follows the log (SPEC §8, §10): the
// streams' limits, the key store beside the data directory and the
// webhooks' deliveries. Part of the okrd program, not of the API library:
// it reads the command line.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "api/streams.h"
#include "api/webhooks/webhooks.h"
#include "eventstore/keystore.h"
#include "eventstore/sealing.h"

namespace okr::api {

struct StreamFlags {
  size_t max_streams = kDefaultMaxStreams;
  int heartbeat_s = kStreamHeartbeat.count();
  int stall_s = kStreamStall.count();
};
void AddStreamOptions(CLI::App& app, StreamFlags& f);
StreamOptions ToStreamOptions(const StreamFlags& f);

struct WebhookFlags {
  std::string keystore_dir;  // empty: DefaultKeyStorePath(data dir)
  std::string digest_at = "08:00";
  std::string ca_file;  // empty: the system's CA certificates
  // Hidden, for tests: the retry backoff, the failure window before a
  // webhook is disabled, the timeouts, and a shift of the webhooks' clock.
  int64_t retry_base_ms = 1000;
  int64_t retry_cap_ms = 300'000;
  int64_t failure_window_s = 24 * 3600;
  int64_t timeout_ms = 10'000;
  int64_t clock_offset_s = 0;
};

void AddWebhookOptions(CLI::App& app, WebhookFlags& f);
// Minutes after 00:00 of "HH:MM"; nullopt when it is no such time.
std::optional<int> ParseDigestAt(const std::string& text);

// The key store's directory: --keystore, else `data_dir`'s sibling.
std::string KeyStoreDir(const WebhookFlags& f, const std::string& data_dir);

// Every person the projection records as erased (SPEC §10) is erased in
// `ring` (null: none), whether or not the key store still held their key
// (one lost, or restored from before they had one): nothing personal is
// sealed for them again. `forensics`: in the ring's memory only.
void EraseWhatTheLogErased(bool forensics, Projector* projector, KeyRing* ring);

// Starts the deliveries from the key store `keys` (KeyStoreDir); `log`
// writes okrd's log lines. Stop them before the store, projector and key
// store go.
Result<std::unique_ptr<webhooks::Webhooks>> StartWebhooks(const WebhookFlags& f, EventStore* store,
                                                          Projector* projector, KeyStore* keys,
                                                          webhooks::LogFn log);

}  // namespace okr::api
