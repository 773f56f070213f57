#include "eventstore/checkpoint.h"

#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cassert>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "eventstore/event_codec.h"
#include "eventstore/event_json.h"

namespace okr {
namespace {

// C2SP signed-note constants. Never change: they are in every signed note.
constexpr uint8_t kEd25519SignatureType = 0x01;
constexpr size_t kKeyIdSize = 4;
constexpr size_t kEd25519SignatureSize = 64;
constexpr std::string_view kSignaturePrefix = "\xE2\x80\x94 ";  // U+2014 EM DASH, space
// C2SP asks verifiers to accept at least 16 signatures and to bound them.
constexpr size_t kMaxNoteSignatures = 64;
// The key file's mode may grant no more than this (owner rw, group r).
constexpr mode_t kMaxKeyFileMode = 0640;

struct PkeyFree {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
struct MdCtxFree {
  void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;

// The oldest queued OpenSSL error as text; clears the queue so a later
// failure does not report this one.
std::string OpensslError() {
  unsigned long code = ERR_peek_error();
  const char* reason = code == 0 ? "no OpenSSL error" : ERR_reason_error_string(code);
  std::string text = reason != nullptr ? reason : "unknown OpenSSL error";
  ERR_clear_error();
  return text;
}

std::string ByteHex(uint8_t value) {
  char buf[5];
  std::snprintf(buf, sizeof buf, "0x%02x", value);
  return buf;
}

std::string Hex8(uint32_t value) {
  char buf[9];
  std::snprintf(buf, sizeof buf, "%08x", value);
  return buf;
}

// A C2SP key name: non-empty, no spaces, no '+', no control characters.
bool IsKeyName(std::string_view name) {
  if (name.empty()) return false;
  for (char c : name) {
    if (c == ' ' || c == '+' || static_cast<unsigned char>(c) < 0x20) return false;
  }
  return true;
}

std::string Quoted(std::string_view text) {
  constexpr size_t kMaxShown = 80;
  if (text.size() <= kMaxShown) return "\"" + std::string(text) + "\"";
  return "\"" + std::string(text.substr(0, kMaxShown)) + "...\"";
}

bool Ed25519Verify(const Ed25519PublicKey& public_key, std::string_view message,
                   std::string_view signature) {
  PkeyPtr key(
      EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, public_key.data(), public_key.size()));
  MdCtxPtr ctx(EVP_MD_CTX_new());
  bool ok =
      key && ctx && EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, key.get()) == 1 &&
      EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()),
                       signature.size(), reinterpret_cast<const unsigned char*>(message.data()),
                       message.size()) == 1;
  ERR_clear_error();  // a bad signature queues an error nobody reads
  return ok;
}

// The tree size line: decimal, no leading zeros ("0" alone is the empty tree).
Result<uint64_t> ParseTreeSize(std::string_view line) {
  uint64_t size = 0;
  auto [end, ec] = std::from_chars(line.data(), line.data() + line.size(), size);
  if (line.empty() || ec == std::errc::invalid_argument || end != line.data() + line.size()) {
    return Status::Invalid("checkpoint tree size " + Quoted(line) + " is not a decimal number");
  }
  if (ec == std::errc::result_out_of_range) {
    return Status::Invalid("checkpoint tree size " + Quoted(line) + " is out of range");
  }
  if (line.size() > 1 && line[0] == '0') {
    return Status::Invalid("checkpoint tree size " + Quoted(line) + " has a leading zero");
  }
  return size;
}

Result<format::Hash> ParseRootHash(std::string_view line) {
  std::optional<std::string> bytes = Base64Decode(line);
  if (!bytes || Base64Encode(*bytes) != line) {
    return Status::Invalid("checkpoint root hash " + Quoted(line) + " is not standard base64");
  }
  format::Hash root{};
  if (bytes->size() != root.size()) {
    return Status::Invalid("checkpoint root hash is " + std::to_string(bytes->size()) +
                           " bytes, not " + std::to_string(root.size()));
  }
  std::memcpy(root.data(), bytes->data(), root.size());
  return root;
}

// The body `text` (note text, final newline included) as a checkpoint.
Result<Checkpoint> ParseCheckpointBody(std::string_view text) {
  assert(!text.empty() && text.back() == '\n');
  std::string_view lines[3];
  for (std::string_view& line : lines) {
    size_t end = text.find('\n');
    if (end == std::string_view::npos) {
      return Status::Invalid("checkpoint body has fewer than three lines (origin, size, root)");
    }
    line = text.substr(0, end);
    text.remove_prefix(end + 1);
  }
  if (!text.empty()) {
    return Status::Invalid(
        "checkpoint body has extension lines after its root hash; okrd's "
        "checkpoints have none");
  }
  if (lines[0].empty()) return Status::Invalid("checkpoint origin line is empty");
  Checkpoint checkpoint;
  checkpoint.origin = std::string(lines[0]);
  OKR_ASSIGN_OR_RETURN(checkpoint.size, ParseTreeSize(lines[1]));
  OKR_ASSIGN_OR_RETURN(checkpoint.root, ParseRootHash(lines[2]));
  return checkpoint;
}

// A note split at its last blank line: the text (ending in its newline)
// and the signature lines after the blank line.
struct NoteParts {
  std::string_view text;
  std::string_view signatures;
};

Result<NoteParts> SplitNote(std::string_view note) {
  for (size_t i = 0; i < note.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(note[i]);
    if (c < 0x20 && c != '\n') {
      return Status::Invalid("note has control character " + ByteHex(c) + " at byte " +
                             std::to_string(i));
    }
  }
  if (note.empty() || note.back() != '\n') {
    return Status::Invalid("note does not end with a newline");
  }
  size_t blank = note.rfind("\n\n");
  if (blank == std::string_view::npos) {
    return Status::Invalid(
        "note has no blank line after its text (the text must end with a newline, then an "
        "empty line, then the signature lines)");
  }
  NoteParts parts{note.substr(0, blank + 1), note.substr(blank + 2)};
  if (parts.signatures.empty()) return Status::Invalid("note has no signature line");
  return parts;
}

struct SignatureLine {
  std::string_view name;
  uint32_t key_id = 0;
  std::string signature;  // after the key id
};

Result<SignatureLine> ParseSignatureLine(std::string_view line) {
  if (!line.starts_with(kSignaturePrefix)) {
    if (line.starts_with("-")) {
      return Status::Invalid("signature line " + Quoted(line) +
                             " starts with ASCII '-'; a signature line starts with U+2014 EM "
                             "DASH and a space");
    }
    return Status::Invalid("line " + Quoted(line) +
                           " after the blank line is not a signature line (\"— <key name> "
                           "<base64 signature>\")");
  }
  std::string_view rest = line.substr(kSignaturePrefix.size());
  size_t space = rest.find(' ');
  SignatureLine out;
  out.name = rest.substr(0, space);
  if (space == std::string_view::npos || !IsKeyName(out.name)) {
    return Status::Invalid("signature line " + Quoted(line) +
                           " has no key name followed by a space and a signature");
  }
  std::optional<std::string> bytes = Base64Decode(rest.substr(space + 1));
  if (!bytes || bytes->size() <= kKeyIdSize) {
    return Status::Invalid("signature line by " + std::string(out.name) +
                           " does not hold base64 of a key id and a signature");
  }
  for (size_t i = 0; i < kKeyIdSize; ++i) {
    out.key_id = (out.key_id << 8) | static_cast<uint8_t>((*bytes)[i]);
  }
  out.signature = bytes->substr(kKeyIdSize);
  return out;
}

// Checks every signature line; OK when one by `verifier` verifies over
// `text` and no line by it fails. Lines by other keys are skipped.
Status CheckSignatures(const NoteParts& parts, const NoteVerifier& verifier) {
  const std::string key = verifier.name + "+" + Hex8(verifier.key_id());
  std::string_view rest = parts.signatures;
  size_t count = 0;
  bool verified = false;
  std::optional<uint32_t> other_id;  // a line with the verifier's name but another key id
  while (!rest.empty()) {
    size_t end = rest.find('\n');  // SplitNote saw the note end with '\n'
    std::string_view line = rest.substr(0, end);
    rest.remove_prefix(end + 1);
    if (++count > kMaxNoteSignatures) {
      return Status::Invalid("note has more than " + std::to_string(kMaxNoteSignatures) +
                             " signature lines");
    }
    OKR_ASSIGN_OR_RETURN(SignatureLine sig, ParseSignatureLine(line));
    if (sig.name != verifier.name) continue;
    if (sig.key_id != verifier.key_id()) {
      other_id = sig.key_id;
      continue;
    }
    if (sig.signature.size() != kEd25519SignatureSize ||
        !Ed25519Verify(verifier.public_key, parts.text, sig.signature)) {
      return Status::Invalid("the signature by key " + key +
                             " does not verify over the note text: the text or the signature "
                             "was changed, or another key signed it");
    }
    verified = true;
  }
  if (verified) return Status::Ok();
  std::string why = "note has no signature by key " + key;
  if (other_id) {
    why +=
        " (it has one named " + verifier.name + " by key id " + Hex8(*other_id) + ": another key)";
  }
  return Status::Invalid(why);
}

}  // namespace

std::string CheckpointBody(const Checkpoint& checkpoint) {
  assert(IsKeyName(checkpoint.origin) && "an origin names the log's key");
  std::string root(reinterpret_cast<const char*>(checkpoint.root.data()), checkpoint.root.size());
  return checkpoint.origin + "\n" + std::to_string(checkpoint.size) + "\n" + Base64Encode(root) +
         "\n";
}

uint32_t NoteVerifier::key_id() const {
  std::string input = name;
  input.push_back('\n');
  input.push_back(static_cast<char>(kEd25519SignatureType));
  input.append(reinterpret_cast<const char*>(public_key.data()), public_key.size());
  format::Hash hash = Sha256(input);
  return (uint32_t{hash[0]} << 24) | (uint32_t{hash[1]} << 16) | (uint32_t{hash[2]} << 8) |
         uint32_t{hash[3]};
}

std::string NoteVerifier::vkey() const {
  assert(IsKeyName(name) && "a vkey's name has no space or '+'");
  std::string key(1, static_cast<char>(kEd25519SignatureType));
  key.append(reinterpret_cast<const char*>(public_key.data()), public_key.size());
  return name + "+" + Hex8(key_id()) + "+" + Base64Encode(key);
}

Result<std::string> VkeyArgument(const std::string& arg) {
  if (arg.empty() || arg[0] != '@') return arg;
  std::ifstream in(arg.substr(1));
  std::string line;
  if (!in || !std::getline(in, line)) return Status::Invalid("cannot read the key " + arg);
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
  return line;
}

Result<NoteVerifier> ParseVkey(std::string_view vkey) {
  size_t plus = vkey.find('+');
  if (plus == std::string_view::npos || !IsKeyName(vkey.substr(0, plus))) {
    return Status::Invalid("vkey " + Quoted(vkey) + " is not <key name>+<key id>+<base64 key>");
  }
  NoteVerifier verifier;
  verifier.name = std::string(vkey.substr(0, plus));
  std::string_view id_text = vkey.substr(plus + 1, 2 * kKeyIdSize);
  uint32_t id = 0;
  bool hex = id_text.size() == 2 * kKeyIdSize && vkey.size() > plus + 1 + id_text.size() &&
             vkey[plus + 1 + id_text.size()] == '+';
  for (char c : id_text) hex = hex && ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'));
  if (!hex) return Status::Invalid("vkey key id must be 8 lower-case hex digits followed by '+'");
  std::from_chars(id_text.data(), id_text.data() + id_text.size(), id, 16);
  std::optional<std::string> key = Base64Decode(vkey.substr(plus + 2 + id_text.size()));
  if (!key || key->empty()) return Status::Invalid("vkey key is not base64");
  if (static_cast<uint8_t>((*key)[0]) != kEd25519SignatureType) {
    return Status::Invalid("vkey signature type " + ByteHex(static_cast<uint8_t>((*key)[0])) +
                           " is not Ed25519 (0x01)");
  }
  if (key->size() != 1 + verifier.public_key.size()) {
    return Status::Invalid("vkey Ed25519 key is " + std::to_string(key->size() - 1) +
                           " bytes, not 32");
  }
  std::memcpy(verifier.public_key.data(), key->data() + 1, verifier.public_key.size());
  if (verifier.key_id() != id) {
    return Status::Invalid("vkey key id " + std::string(id_text) +
                           " does not match its name and key (they give " +
                           Hex8(verifier.key_id()) + ")");
  }
  return verifier;
}

Result<Checkpoint> VerifyCheckpoint(std::string_view note, const NoteVerifier& verifier) {
  OKR_ASSIGN_OR_RETURN(NoteParts parts, SplitNote(note));
  OKR_RETURN_IF_ERROR(CheckSignatures(parts, verifier));
  OKR_ASSIGN_OR_RETURN(Checkpoint checkpoint, ParseCheckpointBody(parts.text));
  if (checkpoint.origin != verifier.name) {
    return Status::Invalid("checkpoint origin " + Quoted(checkpoint.origin) +
                           " is not the name of its key, " + Quoted(verifier.name));
  }
  return checkpoint;
}

struct SigningKey::Impl {
  PkeyPtr key;
};

SigningKey::SigningKey(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {
  assert(impl_ && impl_->key && EVP_PKEY_get_id(impl_->key.get()) == EVP_PKEY_ED25519);
}
SigningKey::~SigningKey() = default;

namespace {

// Refuses to ask for a passphrase: okrd runs unattended, so an encrypted
// key fails to load instead of waiting on a terminal.
int NoPassphrase(char*, int, int, void*) { return -1; }

// The PEM private key read from open `fd` (closed here).
Result<PkeyPtr> ReadPemKey(int fd, const std::string& path) {
  FILE* file = ::fdopen(fd, "r");
  if (file == nullptr) {
    ::close(fd);
    return Status::IOError("cannot read signing key file " + path + ": " + std::strerror(errno));
  }
  PkeyPtr key(PEM_read_PrivateKey(file, nullptr, NoPassphrase, nullptr));
  std::fclose(file);
  if (!key) {
    return Status::Invalid("signing key file " + path +
                           " is not an unencrypted PEM private key (expected Ed25519 in "
                           "PKCS#8, as `openssl genpkey -algorithm ed25519` writes): " +
                           OpensslError());
  }
  if (EVP_PKEY_get_id(key.get()) != EVP_PKEY_ED25519) {
    const char* type = EVP_PKEY_get0_type_name(key.get());
    return Status::Invalid("signing key file " + path + " holds an " + (type ? type : "unknown") +
                           " key, not an Ed25519 key");
  }
  return key;
}

// Writes `bytes` to the new file `path` (mode 0600), never replacing one,
// and syncs it; removes what it made when a write fails.
Status WriteNewPrivateFile(const std::string& path, std::string_view bytes) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0 && errno == EEXIST) {
    return Status::AlreadyExists("signing key file " + path +
                                 " already exists; okrd never replaces a key file");
  }
  if (fd < 0) {
    return Status::IOError("cannot create signing key file " + path + ": " + std::strerror(errno));
  }
  bool ok = true;
  while (ok && !bytes.empty()) {
    ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    ok = n > 0;
    if (ok) bytes.remove_prefix(static_cast<size_t>(n));
  }
  ok = ok && ::fsync(fd) == 0;
  std::string error = ok ? "" : std::strerror(errno);
  ok = ::close(fd) == 0 && ok;
  if (!ok) {
    ::unlink(path.c_str());
    return Status::IOError("cannot write signing key file " + path + ": " + error);
  }
  return Status::Ok();
}

// fsyncs the directory holding `path`, so the new file's name survives a
// power loss.
Status SyncParentDirectory(const std::string& path) {
  std::string dir = std::filesystem::path(path).parent_path().string();
  if (dir.empty()) dir = ".";
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  bool ok = fd >= 0 && ::fsync(fd) == 0;
  std::string error = ok ? "" : std::strerror(errno);
  if (fd >= 0) ::close(fd);
  if (!ok) return Status::IOError("cannot sync directory " + dir + ": " + error);
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<SigningKey>> SigningKey::Load(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT) {
    return Status::NotFound("signing key file " + path + " does not exist");
  }
  if (fd < 0) {
    return Status::IOError("cannot open signing key file " + path + ": " + std::strerror(errno));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return Status::Invalid("signing key file " + path + " is not a regular file");
  }
  mode_t mode = st.st_mode & 07777;
  if ((mode & ~kMaxKeyFileMode) != 0) {
    ::close(fd);
    char octal[8];
    std::snprintf(octal, sizeof octal, "%04o", static_cast<unsigned>(mode));
    return Status::Invalid("signing key file " + path + " has mode " + octal +
                           ": it must be readable by its owner and group only (0600 or 0640; "
                           "chmod 600 " +
                           path + ")");
  }
  OKR_ASSIGN_OR_RETURN(PkeyPtr key, ReadPemKey(fd, path));
  auto impl = std::make_unique<Impl>();
  impl->key = std::move(key);
  return std::unique_ptr<SigningKey>(new SigningKey(std::move(impl)));
}

Result<std::unique_ptr<SigningKey>> SigningKey::Create(const std::string& path) {
  PkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  if (!key) return Status::IOError("cannot make an Ed25519 key: " + OpensslError());
  // Secure memory: the PEM text is wiped when the BIO is freed.
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_secmem()), &BIO_free);
  if (!bio ||
      PEM_write_bio_PrivateKey(bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return Status::IOError("cannot encode the Ed25519 key as PEM: " + OpensslError());
  }
  char* pem = nullptr;
  long pem_size = BIO_get_mem_data(bio.get(), &pem);
  assert(pem != nullptr && pem_size > 0);
  OKR_RETURN_IF_ERROR(WriteNewPrivateFile(path, std::string_view(pem, pem_size)));
  OKR_RETURN_IF_ERROR(SyncParentDirectory(path));
  auto impl = std::make_unique<Impl>();
  impl->key = std::move(key);
  return std::unique_ptr<SigningKey>(new SigningKey(std::move(impl)));
}

Ed25519PublicKey SigningKey::public_key() const {
  Ed25519PublicKey out{};
  size_t size = out.size();
  int ok = EVP_PKEY_get_raw_public_key(impl_->key.get(), out.data(), &size);
  if (ok != 1 || size != out.size()) std::abort();  // an Ed25519 key always has one
  return out;
}

NoteVerifier SigningKey::Verifier(std::string name) const {
  assert(IsKeyName(name));
  return NoteVerifier{std::move(name), public_key()};
}

std::string SigningKey::Sign(const Checkpoint& checkpoint) const {
  const std::string body = CheckpointBody(checkpoint);
  std::string blob(kKeyIdSize + kEd25519SignatureSize, '\0');
  uint32_t id = Verifier(checkpoint.origin).key_id();
  for (size_t i = 0; i < kKeyIdSize; ++i) blob[i] = static_cast<char>(id >> (24 - 8 * i));
  size_t size = kEd25519SignatureSize;
  MdCtxPtr ctx(EVP_MD_CTX_new());
  bool ok =
      ctx && EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, impl_->key.get()) == 1 &&
      EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(blob.data() + kKeyIdSize), &size,
                     reinterpret_cast<const unsigned char*>(body.data()), body.size()) == 1;
  // Ed25519 signing fails only without memory; a note without its
  // signature must never be handed out.
  if (!ok || size != kEd25519SignatureSize) std::abort();
  return body + "\n" + std::string(kSignaturePrefix) + checkpoint.origin + " " +
         Base64Encode(blob) + "\n";
}

}  // namespace okr
