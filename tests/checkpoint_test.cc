// Signed checkpoints (eventstore/checkpoint.h): C2SP notes okrd signs are
// checked with the `openssl` command line, keys `openssl genpkey` makes are
// loaded, C2SP's own example vkey and note are read, and each malformed or
// forged note is refused naming its problem.
#include "eventstore/checkpoint.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>

#include "eventstore/event_codec.h"
#include "eventstore/event_json.h"
#include "tests/test_support.h"

namespace okr {
namespace {

using testing::ReadFile;
using testing::RunCommand;
using testing::TempDir;

// From C2SP signed-note.md, "Verifier keys" / "Example".
constexpr char kExampleVkey[] =
    "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k";
constexpr char kExampleNote[] =
    "This is an example message.\n"
    "\n"
    "— example.com/foo "
    "Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM="
    "\n";
constexpr char kOrigin[] = "okrd/0123456789abcdef";

void WriteFile(const std::string& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

void ExpectInvalid(const Status& status, std::string_view says) {
  EXPECT_EQ(status.code(), Status::Code::kInvalid) << status.ToString();
  EXPECT_NE(status.message().find(says), std::string::npos)
      << "message \"" << status.message() << "\" does not say \"" << says << "\"";
}

class CheckpointTest : public ::testing::Test {
 protected:
  // Runs the openssl command line with `args`; its exit status.
  int Openssl(const std::string& args, std::string* out = nullptr) {
    return RunCommand(std::string(OKR_OPENSSL_PATH) + " " + args + " 2>/dev/null", out);
  }

  // A key made by `openssl genpkey`, mode 0600.
  std::string OpensslKey(const std::string& name) {
    std::string path = dir_.Sub(name);
    EXPECT_EQ(Openssl("genpkey -algorithm ed25519 -out " + path), 0);
    ::chmod(path.c_str(), 0600);
    return path;
  }

  // True when `openssl pkeyutl -verify` accepts `signature` over `text`
  // with the public half of the private key in `key_path`.
  bool OpensslVerifies(const std::string& key_path, std::string_view text,
                       std::string_view signature) {
    std::string pub = dir_.Sub("pub.pem"), body = dir_.Sub("body"), sig = dir_.Sub("sig");
    EXPECT_EQ(Openssl("pkey -in " + key_path + " -pubout -out " + pub), 0);
    WriteFile(body, text);
    WriteFile(sig, signature);
    return Openssl("pkeyutl -verify -pubin -inkey " + pub + " -rawin -in " + body + " -sigfile " +
                   sig) == 0;
  }

  // A note over any `text`, signed by `openssl pkeyutl` with the key in
  // `key_path` under `verifier`'s name and key id: the way to forge
  // malformed bodies with a good signature.
  std::string OpensslNote(const std::string& key_path, const NoteVerifier& verifier,
                          std::string_view text) {
    std::string body = dir_.Sub("text"), sig = dir_.Sub("text.sig");
    WriteFile(body, text);
    EXPECT_EQ(Openssl("pkeyutl -sign -inkey " + key_path + " -rawin -in " + body + " -out " + sig),
              0);
    uint32_t id = verifier.key_id();
    std::string blob = {static_cast<char>(id >> 24), static_cast<char>(id >> 16),
                        static_cast<char>(id >> 8), static_cast<char>(id)};
    return std::string(text) + "\n— " + verifier.name + " " + Base64Encode(blob + ReadFile(sig)) +
           "\n";
  }

  static Checkpoint Sample(uint64_t size = 42) {
    return Checkpoint{kOrigin, size, Sha256("root of " + std::to_string(size))};
  }

  TempDir dir_;
};

// The key id and Ed25519 signature in a note's last signature line.
std::string SignatureBlob(const std::string& note) {
  size_t space = note.rfind(' ');
  return Base64Decode(std::string_view(note).substr(space + 1, note.size() - space - 2)).value();
}

TEST_F(CheckpointTest, SignedNoteVerifiesWithTheOpensslCommandLine) {
  std::string path = dir_.Sub("log.signing.key");
  auto key = SigningKey::Create(path);
  ASSERT_TRUE(key.ok()) << key.status().ToString();
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);

  Checkpoint checkpoint = Sample();
  std::string note = (*key)->Sign(checkpoint);
  std::string body = CheckpointBody(checkpoint);
  EXPECT_EQ(body, std::string(kOrigin) + "\n42\n" +
                      Base64Encode(std::string(checkpoint.root.begin(), checkpoint.root.end())) +
                      "\n");
  ASSERT_TRUE(note.starts_with(body + "\n— " + kOrigin + " ")) << note;
  EXPECT_EQ(note, (*key)->Sign(checkpoint)) << "Ed25519 is deterministic";

  std::string blob = SignatureBlob(note);
  ASSERT_EQ(blob.size(), 4u + 64u);
  NoteVerifier verifier = (*key)->Verifier(kOrigin);
  uint32_t id = verifier.key_id();
  EXPECT_EQ(blob.substr(0, 4),
            std::string({static_cast<char>(id >> 24), static_cast<char>(id >> 16),
                         static_cast<char>(id >> 8), static_cast<char>(id)}));
  EXPECT_TRUE(OpensslVerifies(path, body, blob.substr(4)));
  EXPECT_FALSE(OpensslVerifies(path, CheckpointBody(Sample(43)), blob.substr(4)));

  // The public key okrd reports is the one openssl derives from the file.
  std::string der;
  ASSERT_EQ(Openssl("pkey -in " + path + " -pubout -outform DER", &der), 0);
  Ed25519PublicKey public_key = (*key)->public_key();
  EXPECT_EQ(der.substr(der.size() - 32), std::string(public_key.begin(), public_key.end()));

  auto verified = VerifyCheckpoint(note, verifier);
  ASSERT_TRUE(verified.ok()) << verified.status().ToString();
  EXPECT_EQ(*verified, checkpoint);
  auto parsed = ParseVkey(verifier.vkey());
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->name, kOrigin);
  EXPECT_EQ(parsed->public_key, public_key);
}

TEST_F(CheckpointTest, KeyFromOpensslGenpkeyLoadsAndItsSignaturesVerify) {
  std::string path = OpensslKey("genpkey.pem");
  auto key = SigningKey::Load(path);
  ASSERT_TRUE(key.ok()) << key.status().ToString();
  std::string note = (*key)->Sign(Sample(7));
  EXPECT_TRUE(OpensslVerifies(path, CheckpointBody(Sample(7)), SignatureBlob(note).substr(4)));
  auto verified = VerifyCheckpoint(note, (*key)->Verifier(kOrigin));
  ASSERT_TRUE(verified.ok()) << verified.status().ToString();
  EXPECT_EQ(*verified, Sample(7));
  // And a note openssl signed verifies the same.
  auto by_openssl =
      VerifyCheckpoint(OpensslNote(path, (*key)->Verifier(kOrigin), CheckpointBody(Sample(7))),
                       (*key)->Verifier(kOrigin));
  ASSERT_TRUE(by_openssl.ok()) << by_openssl.status().ToString();
}

TEST_F(CheckpointTest, C2spExampleVkeyAndNote) {
  auto verifier = ParseVkey(kExampleVkey);
  ASSERT_TRUE(verifier.ok()) << verifier.status().ToString();
  EXPECT_EQ(verifier->name, "example.com/foo");
  EXPECT_EQ(verifier->key_id(), 0x530d903au);
  EXPECT_EQ(verifier->vkey(), kExampleVkey);
  // Its signature verifies; its text is no checkpoint, and the message says
  // so rather than blaming the signature.
  ExpectInvalid(VerifyCheckpoint(kExampleNote, *verifier).status(), "fewer than three lines");
  std::string tampered = kExampleNote;
  tampered[tampered.find('.')] = '!';
  ExpectInvalid(VerifyCheckpoint(tampered, *verifier).status(), "does not verify");
}

TEST_F(CheckpointTest, TamperedBodyOrSignatureIsRefused) {
  auto key = SigningKey::Create(dir_.Sub("k"));
  ASSERT_TRUE(key.ok());
  NoteVerifier verifier = (*key)->Verifier(kOrigin);
  std::string note = (*key)->Sign(Sample());
  std::string body_changed = note;
  body_changed.replace(body_changed.find("\n42\n"), 4, "\n43\n");
  ExpectInvalid(VerifyCheckpoint(body_changed, verifier).status(), "does not verify");

  std::string blob = SignatureBlob(note);
  blob[20] ^= 1;
  std::string sig_changed =
      CheckpointBody(Sample()) + "\n— " + kOrigin + " " + Base64Encode(blob) + "\n";
  ExpectInvalid(VerifyCheckpoint(sig_changed, verifier).status(), "does not verify");
}

TEST_F(CheckpointTest, SignatureByAnotherKeyOfTheSameNameIsRefused) {
  auto key = SigningKey::Create(dir_.Sub("k"));
  auto other = SigningKey::Create(dir_.Sub("other"));
  ASSERT_TRUE(key.ok() && other.ok());
  NoteVerifier verifier = (*key)->Verifier(kOrigin);
  std::string forged = (*other)->Sign(Sample());
  ExpectInvalid(VerifyCheckpoint(forged, verifier).status(), "another key");

  // The other key's signature under this key's id: same name and id, bad signature.
  std::string blob = SignatureBlob(forged);
  uint32_t id = verifier.key_id();
  for (int i = 0; i < 4; ++i) blob[i] = static_cast<char>(id >> (24 - 8 * i));
  std::string same_id =
      CheckpointBody(Sample()) + "\n— " + kOrigin + " " + Base64Encode(blob) + "\n";
  ExpectInvalid(VerifyCheckpoint(same_id, verifier).status(), "does not verify");
}

TEST_F(CheckpointTest, SignaturesOfUnknownKeysAreIgnored) {
  auto key = SigningKey::Create(dir_.Sub("k"));
  auto other = SigningKey::Create(dir_.Sub("other"));
  ASSERT_TRUE(key.ok() && other.ok());
  std::string note = (*key)->Sign(Sample());
  std::string other_note = (*other)->Sign(Sample());  // same name, another key id
  std::string other_line = other_note.substr(other_note.rfind("— "));
  std::string witness = "— witness.example/w AAECAwQFBgcICQoLDA0ODw==\n";
  auto verified = VerifyCheckpoint(note + other_line + witness, (*key)->Verifier(kOrigin));
  ASSERT_TRUE(verified.ok()) << verified.status().ToString();
  EXPECT_EQ(*verified, Sample());
}

TEST_F(CheckpointTest, MalformedNotesAreRefused) {
  auto key = SigningKey::Create(dir_.Sub("k"));
  ASSERT_TRUE(key.ok());
  NoteVerifier verifier = (*key)->Verifier(kOrigin);
  std::string note = (*key)->Sign(Sample());
  std::string body = CheckpointBody(Sample());
  ExpectInvalid(VerifyCheckpoint(body + "\n", verifier).status(), "no signature line");
  ExpectInvalid(VerifyCheckpoint(body, verifier).status(), "no blank line");
  std::string ascii_dash = note;
  ascii_dash.replace(ascii_dash.find("— "), std::string("— ").size(), "- ");
  ExpectInvalid(VerifyCheckpoint(ascii_dash, verifier).status(), "ASCII '-'");
  ExpectInvalid(VerifyCheckpoint(note.substr(0, note.size() - 1), verifier).status(),
                "does not end with a newline");
  std::string with_tab = note;
  with_tab[0] = '\t';
  ExpectInvalid(VerifyCheckpoint(with_tab, verifier).status(), "control character 0x09");
}

TEST_F(CheckpointTest, MalformedBodiesWithGoodSignaturesAreRefused) {
  std::string path = OpensslKey("k.pem");
  auto key = SigningKey::Load(path);
  ASSERT_TRUE(key.ok()) << key.status().ToString();
  NoteVerifier verifier = (*key)->Verifier(kOrigin);
  std::string root = Base64Encode(std::string(32, 'r'));
  auto refused = [&](const std::string& text) {
    return VerifyCheckpoint(OpensslNote(path, verifier, text), verifier).status();
  };
  std::string origin = std::string(kOrigin) + "\n";
  ExpectInvalid(refused(origin + "042\n" + root + "\n"), "leading zero");
  ExpectInvalid(refused(origin + "4x\n" + root + "\n"), "not a decimal number");
  ExpectInvalid(refused(origin + "-4\n" + root + "\n"), "not a decimal number");
  ExpectInvalid(refused(origin + "99999999999999999999\n" + root + "\n"), "out of range");
  ExpectInvalid(refused(origin + "4\n" + Base64Encode(std::string(31, 'r')) + "\n"),
                "31 bytes, not 32");
  ExpectInvalid(refused(origin + "4\n" + root.substr(1) + "\n"), "not standard base64");
  ExpectInvalid(refused(origin + "4\n" + root + "\nextension\n"), "extension lines");
  ExpectInvalid(refused("other.example/log\n4\n" + root + "\n"), "is not the name of its key");
  // Without its final newline the text runs into the signature line.
  ExpectInvalid(refused(origin + "4\n" + root), "no blank line");
  ASSERT_TRUE(
      VerifyCheckpoint(OpensslNote(path, verifier, origin + "0\n" + root + "\n"), verifier).ok())
      << "the empty tree's size is 0";
}

TEST_F(CheckpointTest, MalformedVkeysAreRefused) {
  std::string good = kExampleVkey;
  ExpectInvalid(ParseVkey("").status(), "is not <key name>");
  ExpectInvalid(ParseVkey("example.com/foo").status(), "is not <key name>");
  ExpectInvalid(ParseVkey("+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k").status(),
                "is not <key name>");
  ExpectInvalid(
      ParseVkey("example.com/foo+530D903A+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k").status(),
      "8 lower-case hex");
  ExpectInvalid(
      ParseVkey("example.com/foo+530d903+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k").status(),
      "8 lower-case hex");
  ExpectInvalid(ParseVkey("example.com/foo+530d903a+!!!!").status(), "not base64");
  std::string key = Base64Decode(good.substr(good.rfind('+') + 1)).value();
  ExpectInvalid(
      ParseVkey("example.com/foo+530d903a+" + Base64Encode("\x02" + key.substr(1))).status(),
      "signature type 0x02");
  ExpectInvalid(ParseVkey("example.com/foo+530d903a+" + Base64Encode(key.substr(0, 32))).status(),
                "31 bytes, not 32");
  ExpectInvalid(ParseVkey("example.com/foo+530d903b+" + good.substr(good.rfind('+') + 1)).status(),
                "does not match its name and key");
  ExpectInvalid(ParseVkey("example.com/bar+530d903a+" + good.substr(good.rfind('+') + 1)).status(),
                "does not match its name and key");
}

TEST_F(CheckpointTest, KeyFileReadableByOthersIsRefused) {
  std::string path = OpensslKey("k.pem");
  ASSERT_EQ(::chmod(path.c_str(), 0644), 0);
  auto key = SigningKey::Load(path);
  ExpectInvalid(key.status(), "has mode 0644");
  EXPECT_NE(key.status().message().find("chmod 600"), std::string::npos);
  ASSERT_EQ(::chmod(path.c_str(), 0640), 0);
  EXPECT_TRUE(SigningKey::Load(path).ok());
  ASSERT_EQ(::chmod(path.c_str(), 0600), 0);
  EXPECT_TRUE(SigningKey::Load(path).ok());
}

TEST_F(CheckpointTest, CreateNeverReplacesAFile) {
  std::string path = dir_.Sub("k");
  auto first = SigningKey::Create(path);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  std::string pem = ReadFile(path);
  EXPECT_TRUE(pem.starts_with("-----BEGIN PRIVATE KEY-----\n")) << "PKCS#8 PEM";
  auto again = SigningKey::Create(path);
  EXPECT_EQ(again.status().code(), Status::Code::kAlreadyExists) << again.status().ToString();
  EXPECT_EQ(ReadFile(path), pem);
  auto loaded = SigningKey::Load(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ((*loaded)->public_key(), (*first)->public_key());

  std::string other = dir_.Sub("notes.txt");
  WriteFile(other, "keep me\n");
  EXPECT_EQ(SigningKey::Create(other).status().code(), Status::Code::kAlreadyExists);
  EXPECT_EQ(ReadFile(other), "keep me\n");
}

TEST_F(CheckpointTest, FilesThatAreNotEd25519KeysAreRefused) {
  EXPECT_EQ(SigningKey::Load(dir_.Sub("missing")).status().code(), Status::Code::kNotFound);
  std::string text = dir_.Sub("text");
  WriteFile(text, "not a key\n");
  ::chmod(text.c_str(), 0600);
  ExpectInvalid(SigningKey::Load(text).status(), "is not an unencrypted PEM private key");

  std::string rsa = dir_.Sub("rsa.pem");
  ASSERT_EQ(Openssl("genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 -out " + rsa), 0);
  ::chmod(rsa.c_str(), 0600);
  ExpectInvalid(SigningKey::Load(rsa).status(), "RSA key, not an Ed25519 key");

  std::string encrypted = dir_.Sub("encrypted.pem");
  ASSERT_EQ(Openssl("genpkey -algorithm ed25519 -aes256 -pass pass:secret -out " + encrypted), 0);
  ::chmod(encrypted.c_str(), 0600);
  ExpectInvalid(SigningKey::Load(encrypted).status(), "is not an unencrypted PEM private key");
}

}  // namespace
}  // namespace okr
