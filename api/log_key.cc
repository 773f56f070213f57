#include "api/log_key.h"

#include <openssl/rand.h>

#include <algorithm>
#include <cassert>
#include <cstdlib>

namespace okr::api {

std::string DefaultSigningKeyPath(std::string data_dir) {
  while (data_dir.size() > 1 && data_dir.back() == '/') data_dir.pop_back();
  return data_dir + ".signing.key";
}

std::string NewOrigin() {
  unsigned char bytes[8];
  if (RAND_bytes(bytes, sizeof bytes) != 1) std::abort();  // no randomness: nothing is safe
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out = "okrd/";
  for (unsigned char b : bytes) {
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 0xf]);
  }
  assert(out.size() == 5 + 16 && ValidOrigin(out));
  return out;
}

bool ValidOrigin(const std::string& origin) {
  if (origin.empty() || origin.size() > kMaxOriginBytes) return false;
  return std::all_of(origin.begin(), origin.end(),
                     [](char c) { return c > ' ' && c < 0x7f && c != '+'; });
}

Result<std::shared_ptr<const SigningKey>> LoadSigningKey(const std::string& path) {
  auto loaded = SigningKey::Load(path);
  if (loaded.status().code() == Status::Code::kNotFound) {
    return std::shared_ptr<const SigningKey>();
  }
  if (!loaded.ok()) return loaded.status();
  return std::shared_ptr<const SigningKey>(std::move(loaded.value()));
}

Result<std::optional<RecordedKey>> FindRecordedKey(const EventStore& store) {
  OKR_ASSIGN_OR_RETURN(std::vector<StoredEvent> events, store.ReadStream(kLogEntity, 0, 1));
  if (events.empty()) return std::optional<RecordedKey>();
  OKR_ASSIGN_OR_RETURN(auto decoded, DecodedEvent::Decode(events.front().bytes));
  schema::Event::Reader ev = decoded->event();
  const std::string where = "seq " + std::to_string(events.front().seq);
  if (ev.which() != schema::Event::Which::LOG_SIGNING_KEY) {
    return Status::Corruption(where + " opens the " + std::string(kLogEntity) +
                              " stream but is no log.signing_key event");
  }
  auto recorded = ev.getLogSigningKey();
  RecordedKey out;
  out.seq = events.front().seq;
  out.verifier.name = recorded.getOrigin().cStr();
  auto key = recorded.getPublicKey();
  if (key.size() != out.verifier.public_key.size() || !ValidOrigin(out.verifier.name)) {
    return Status::Corruption(where +
                              ": the log.signing_key event holds no Ed25519 key and origin");
  }
  std::copy(key.begin(), key.end(), out.verifier.public_key.begin());
  return std::optional<RecordedKey>(std::move(out));
}

namespace {

// Refuses a start whose key file or --origin is not the log's.
Status CheckRecorded(const RecordedKey& recorded, const SigningKey* key, const std::string& path,
                     const std::string& origin) {
  const std::string prefix = "the log's signing key " + recorded.verifier.vkey() +
                             " is recorded at seq " + std::to_string(recorded.seq) + " but ";
  const std::string rotation = "; key rotation is not supported";
  if (key == nullptr) return Status::Invalid(prefix + path + " is missing" + rotation);
  if (key->public_key() != recorded.verifier.public_key) {
    return Status::Invalid(prefix + path + " holds another key (" +
                           key->Verifier(recorded.verifier.name).vkey() + ")" + rotation);
  }
  if (!origin.empty() && origin != recorded.verifier.name) {
    return Status::Invalid("the log's origin " + recorded.verifier.name + " is recorded at seq " +
                           std::to_string(recorded.seq) + " but --origin is " + origin +
                           "; a log's origin never changes");
  }
  return Status::Ok();
}

Result<uint64_t> AppendKeyEvent(EventStore* store, const SigningKey& key,
                                const std::string& origin) {
  AppendRequest request;
  request.events.emplace_back(kSystemActor, kLogEntity);
  auto recorded = request.events.back().event().initLogSigningKey();
  recorded.setOrigin(origin);
  const Ed25519PublicKey public_key = key.public_key();
  recorded.setPublicKey(kj::arrayPtr(public_key.data(), public_key.size()));
  request.expected.push_back({kLogEntity, 0});
  OKR_ASSIGN_OR_RETURN(AppendResult appended, store->Append(std::move(request)));
  assert(appended.first_seq == appended.last_seq);
  return appended.first_seq;
}

}  // namespace

Result<LogKey> BindSigningKey(EventStore* store, std::shared_ptr<const SigningKey> key,
                              const std::string& path, const std::string& origin) {
  assert(store != nullptr);
  assert(origin.empty() || ValidOrigin(origin));
  OKR_ASSIGN_OR_RETURN(std::optional<RecordedKey> recorded, FindRecordedKey(*store));
  if (recorded) {
    OKR_RETURN_IF_ERROR(CheckRecorded(*recorded, key.get(), path, origin));
    return LogKey{std::move(key), recorded->verifier.name, recorded->seq, false};
  }
  if (key == nullptr) {
    OKR_ASSIGN_OR_RETURN(std::unique_ptr<SigningKey> created, SigningKey::Create(path));
    key = std::move(created);
  }
  LogKey out{std::move(key), origin.empty() ? NewOrigin() : origin, 0, true};
  OKR_ASSIGN_OR_RETURN(out.recorded_seq, AppendKeyEvent(store, *out.key, out.origin));
  return out;
}

}  // namespace okr::api
