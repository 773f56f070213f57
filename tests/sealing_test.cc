// Sealing (eventstore/sealing.h, SPEC §10) on a real RocksDB log and key
// store: personal texts stored only as ciphertext bound to their seq, field
// and subject; erasure by deleting the key; the log's erasures enforced on
// a key store restored from before them; a flipped byte never shown.
#include "eventstore/sealing.h"

#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include <filesystem>
#include <string>

#include "eventstore/event_codec.h"
#include "eventstore/event_json.h"
#include "eventstore/event_store.h"
#include "eventstore/keystore.h"
#include "tests/test_support.h"

namespace okr {
namespace {

using testing::TempDir;
using PF = schema::PersonalField;
using State = Revealed::State;

constexpr char kName[] = "Maya Quintero-Zed";
constexpr char kNote[] = "Maya's private note about her health";

// A log and a key store side by side, the store sealing with the ring.
struct Sealed {
  TempDir dir;
  std::unique_ptr<KeyStore> keys;
  std::unique_ptr<KeyRing> ring;
  std::unique_ptr<EventStore> store;

  Sealed() { Open(); }
  void Open() {
    auto k = KeyStore::Open(dir.Sub("data.keys"));
    ASSERT_TRUE(k.ok()) << k.status().ToString();
    keys = std::move(*k);
    auto r = KeyRing::Open(keys.get());
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ring = std::move(*r);
    OpenOptions options;
    options.key_ring = ring.get();
    auto s = EventStore::Open(dir.Sub("data"), options);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store = std::move(*s);
    InstallKeyRing(ring.get(), store.get());
  }
  void Close() {
    InstallKeyRing(nullptr, nullptr);
    store.reset();
    ring.reset();
    keys.reset();
  }
  ~Sealed() { InstallKeyRing(nullptr, nullptr); }

  // The person p-4821 (name and email sealed under p-4821), then a check-in
  // whose note and reason p-4821 wrote (sealed under p-4821 too).
  void WritePerson() {
    EventDraft person("hr.admin", "p-4821");
    auto u = person.event().initUnitCreated();
    u.setKind(schema::UnitKind::PERSON);
    person.SetPersonal(PF::NAME, kName, "p-4821");
    person.SetPersonal(PF::EMAIL, "maya@example.com", "p-4821");
    ASSERT_TRUE(store->Append(testing::OneEvent(std::move(person))).ok());
    EventDraft ci("pseudonym-17", "kr-1");
    auto b = ci.event().initCheckInRecorded();
    b.setCheckIn("ci-1");
    b.setValue(3);
    ci.SetPersonal(PF::NOTE, kNote, "p-4821");
    ci.SetPersonal(PF::REASON, "because Maya said so", "p-4821");
    ASSERT_TRUE(store->Append(testing::OneEvent(std::move(ci))).ok());
  }
  std::string Stored(uint64_t seq) {
    auto events = store->Read(seq - 1, 1);
    EXPECT_TRUE(events.ok() && events->size() == 1);
    return events.ok() && !events->empty() ? (*events)[0].bytes : std::string();
  }
};

TEST(Sealing, StoresOnlyCiphertextAndRevealsThroughTheKey) {
  Sealed s;
  s.WritePerson();
  const std::string person = s.Stored(1), check_in = s.Stored(2);
  EXPECT_EQ(person.find("Maya"), std::string::npos);
  EXPECT_EQ(person.find("maya@example.com"), std::string::npos);
  EXPECT_EQ(check_in.find("private note"), std::string::npos);
  EXPECT_EQ(check_in.find("because"), std::string::npos);
  auto decoded = DecodedEvent::Decode(check_in);
  ASSERT_TRUE(decoded.ok());
  auto ev = (*decoded)->event();
  EXPECT_EQ(ev.getSealed().size(), 2u);
  EXPECT_EQ(std::string(ev.getCheckInRecorded().getNote().cStr()), "");
  const std::string token = StoredText(ev, PF::NOTE);
  EXPECT_TRUE(IsSealedToken(token));
  EXPECT_EQ(token.find("private"), std::string::npos);
  EXPECT_EQ(SealedSubject(token), "p-4821");
  Revealed r = Reveal(token);
  EXPECT_EQ(r.state, State::kOpened);
  EXPECT_EQ(r.text, kNote);
  // The audit JSON shows the texts where the body would have them.
  auto j = EventToJson(ev);
  EXPECT_EQ(j["data"]["note"], kNote);
  EXPECT_EQ(j["reason"], "because Maya said so");
  EXPECT_FALSE(j.contains("erased"));
  // Plain text passes as it is; no ring: sealed texts read as erased.
  EXPECT_EQ(Reveal("plain words").state, State::kPlain);
  InstallKeyRing(nullptr, nullptr);
  EXPECT_EQ(Reveal(token).state, State::kErased);
}

TEST(Sealing, BindsEachCiphertextToItsSeqFieldAndSubject) {
  Sealed s;
  s.WritePerson();
  auto decoded = DecodedEvent::Decode(s.Stored(2));
  ASSERT_TRUE(decoded.ok());
  auto entry = (*decoded)->event().getSealed()[0];
  auto bytes = [](capnp::Data::Reader d) {
    return std::string(reinterpret_cast<const char*>(d.begin()), d.size());
  };
  const std::string box = bytes(entry.getBox());
  ASSERT_EQ(entry.getField(), PF::NOTE);
  ASSERT_EQ(box.size(), KeyRing::BoxBytes(std::string_view(kNote).size()));
  EXPECT_EQ(s.ring->Open("p-4821", 2, PF::NOTE, box).text, kNote);
  // Moved to another event, field or subject, it no longer authenticates.
  EXPECT_EQ(s.ring->Open("p-4821", 3, PF::NOTE, box).state, State::kDamaged);
  EXPECT_EQ(s.ring->Open("p-4821", 2, PF::TEXT, box).state, State::kDamaged);
  ASSERT_TRUE(s.ring->Prepare({"p-9"}).ok());
  EXPECT_EQ(s.ring->Open("p-9", 2, PF::NOTE, box).state, State::kDamaged);
  // One flipped bit of the nonce, the ciphertext or the tag: damaged, never
  // garbage; and so is a box cut short.
  for (size_t i : {size_t{0}, size_t{12}, box.size() - 1}) {
    std::string flipped = box;
    flipped[i] = static_cast<char>(flipped[i] ^ 1);
    Revealed r = s.ring->Open("p-4821", 2, PF::NOTE, flipped);
    EXPECT_EQ(r.state, State::kDamaged) << i;
    EXPECT_EQ(r.text, "");
  }
  EXPECT_EQ(s.ring->Open("p-4821", 2, PF::NOTE, box.substr(0, KeyRing::BoxBytes(0) - 1)).state,
            State::kDamaged);
  std::string token = SealedToken(2, PF::NOTE, "p-4821", box);
  token[token.size() / 2] = token[token.size() / 2] == 'A' ? 'B' : 'A';
  EXPECT_EQ(Reveal(token).state, State::kDamaged);
  EXPECT_EQ(Reveal("\xff"
                   "Snot base64!")
                .state,
            State::kDamaged);
}

TEST(Sealing, ErasureDeletesTheKeyAndRefusesNewPersonalData) {
  Sealed s;
  s.WritePerson();
  auto seq = EraseSubject(s.store.get(), s.ring.get(), "p-4821", "hr.admin", "art. 17 request");
  ASSERT_TRUE(seq.ok()) << seq.status().ToString();
  EXPECT_EQ(*seq, 3u);
  auto decoded = DecodedEvent::Decode(s.Stored(2));
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(Reveal(StoredText((*decoded)->event(), PF::NOTE)).state, State::kErased);
  auto j = EventToJson((*decoded)->event());
  EXPECT_TRUE(j["data"]["note"].is_null());
  EXPECT_TRUE(j["reason"].is_null());
  EXPECT_EQ(j["erased"], true);
  // Nothing personal is written for the subject again; nothing is written.
  EventDraft more("pseudonym-17", "kr-1");
  more.event().initCommentAdded();
  more.SetPersonal(PF::TEXT, "one more thing", "p-4821");
  auto refused = s.store->Append(testing::OneEvent(std::move(more)));
  EXPECT_EQ(refused.status().code(), Status::Code::kConflict);
  EXPECT_EQ(s.store->head().seq, 3u);
  // A second erasure names the first; an unknown subject is not found.
  auto again = EraseSubject(s.store.get(), s.ring.get(), "p-4821", "hr.admin", "again");
  EXPECT_EQ(again.status().code(), Status::Code::kAlreadyExists);
  EXPECT_NE(again.status().message().find("seq 3"), std::string::npos);
  EXPECT_EQ(EraseSubject(s.store.get(), s.ring.get(), "p-0", "hr.admin", "x").status().code(),
            Status::Code::kNotFound);
  EXPECT_EQ(s.store->head().seq, 3u);
  // The stored bytes never changed: the chain still verifies.
  EXPECT_TRUE(s.store->Verify().ok);
  // After a restart the key is still gone.
  s.Close();
  s.Open();
  EXPECT_EQ(s.ring->size(), 0u);
  EXPECT_TRUE(s.ring->IsErased("p-4821"));
}

TEST(Sealing, TheLogErasesAgainTheKeysOfARestoredKeyStore) {
  Sealed s;
  s.WritePerson();
  ASSERT_TRUE(s.keys->Checkpoint(s.dir.Sub("keys-before")).ok());
  ASSERT_TRUE(EraseSubject(s.store.get(), s.ring.get(), "p-4821", "hr.admin", "request").ok());
  s.Close();
  // The key-store backup from before the erasure put in place of the store.
  std::filesystem::remove_all(s.dir.Sub("data.keys"));
  std::filesystem::rename(s.dir.Sub("keys-before"), s.dir.Sub("data.keys"));
  s.Open();
  EXPECT_EQ(s.ring->size(), 1u);  // the restored key is back …
  std::vector<std::string> erased;
  ASSERT_TRUE(EnforceErasures(*s.store, s.ring.get(), &erased).ok());
  EXPECT_EQ(erased, std::vector<std::string>{"p-4821"});  // … until the log is read
  EXPECT_EQ(s.ring->size(), 0u);
  auto decoded = DecodedEvent::Decode(s.Stored(1));
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(Reveal(StoredText((*decoded)->event(), PF::NAME)).state, State::kErased);
  // Gone from the key store's files too, not only from this ring.
  s.Close();
  s.Open();
  EXPECT_EQ(s.ring->size(), 0u);
}

TEST(Sealing, AnErasureCutShortIsFinishedWhenTheKeyStoreOpens) {
  Sealed s;
  s.WritePerson();
  ASSERT_TRUE(s.keys->Put("subject-erased/p-4821/", "").ok());  // the mark, and no more
  s.Close();
  s.Open();
  EXPECT_EQ(s.ring->size(), 0u);
  auto key = s.keys->Get("subject-key/p-4821/");
  ASSERT_TRUE(key.ok());
  EXPECT_FALSE(key->has_value());
}

TEST(Sealing, WithoutAKeyRingTheTextsAreStoredAsWritten) {
  TempDir dir;
  auto store = EventStore::Open(dir.Sub("data"));
  ASSERT_TRUE(store.ok());
  EventDraft ci("someone", "kr-1");
  ci.event().initCheckInRecorded().setCheckIn("ci-9");
  ci.SetPersonal(PF::NOTE, "plain note", "p-1");
  ASSERT_TRUE((*store)->Append(testing::OneEvent(std::move(ci))).ok());
  auto events = (*store)->Read(0, 1);
  ASSERT_TRUE(events.ok());
  auto decoded = DecodedEvent::Decode((*events)[0].bytes);
  ASSERT_TRUE(decoded.ok());
  EXPECT_FALSE((*decoded)->event().hasSealed());
  EXPECT_EQ(StoredText((*decoded)->event(), PF::NOTE), "plain note");
}

}  // namespace
}  // namespace okr
