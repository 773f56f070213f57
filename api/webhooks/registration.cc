// What a webhook registration must be (POST /v1/webhooks), and how a
// webhook is shown: never its URL or secret.
#include <algorithm>
#include <cassert>
#include <cctype>

#include "api/webhooks/webhooks.h"
#include "eventstore/base/time.h"
#include "projections/domain/commands.h"

namespace okr::webhooks {

using nlohmann::json;

bool ValidWebhookId(std::string_view id) {
  return !id.empty() && id.size() <= kMaxIdChars && std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
  });
}

namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool ValidHost(std::string_view host) {
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    return std::all_of(host.begin() + 1, host.end() - 1, [](char c) {
      return std::isxdigit(static_cast<unsigned char>(c)) || c == ':' || c == '.';
    });
  }
  return !host.empty() && host.size() <= 253 && std::all_of(host.begin(), host.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
  });
}

bool ValidPort(std::string_view port) {
  if (port.empty() || port.size() > 5) return false;
  if (!std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return false;
  int n = std::stoi(std::string(port));
  return n >= 1 && n <= 65535;
}

// Splits "host[:port]" (host possibly "[v6]") into *parts.
bool SplitAuthority(std::string_view authority, UrlParts* parts) {
  if (authority.find('@') != std::string_view::npos) return false;  // no user:password@
  size_t colon = std::string_view::npos;
  if (!authority.empty() && authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return false;
    if (close + 1 < authority.size()) {
      if (authority[close + 1] != ':') return false;
      colon = close + 1;
    }
  } else {
    colon = authority.find(':');
  }
  parts->host = Lower(authority.substr(0, colon));
  if (colon != std::string_view::npos) parts->port = std::string(authority.substr(colon + 1));
  return ValidHost(parts->host) && (colon == std::string_view::npos || ValidPort(parts->port));
}

}  // namespace

std::optional<UrlParts> SplitUrl(std::string_view url) {
  if (url.size() > kMaxUrlBytes) return std::nullopt;
  bool printable = std::all_of(url.begin(), url.end(), [](char c) { return c > 0x20 && c < 0x7f; });
  size_t sep = url.find("://");
  if (!printable || sep == std::string_view::npos) return std::nullopt;
  UrlParts parts;
  parts.scheme = Lower(url.substr(0, sep));
  if (parts.scheme != "http" && parts.scheme != "https") return std::nullopt;
  std::string_view rest = url.substr(sep + 3);
  size_t end = rest.find_first_of("/?#");
  if (!SplitAuthority(rest.substr(0, end), &parts)) return std::nullopt;
  std::string_view path = end == std::string_view::npos ? "" : rest.substr(end);
  path = path.substr(0, path.find('#'));  // a fragment is never sent
  parts.path = path.empty() || path.front() != '/' ? "/" + std::string(path) : std::string(path);
  return parts;
}

namespace {

Status CheckKnownFields(const json& body) {
  static const char* kFields[] = {"id", "url", "secret", "types", "cycle"};
  for (auto it = body.begin(); it != body.end(); ++it) {
    if (std::none_of(std::begin(kFields), std::end(kFields),
                     [&](const char* f) { return it.key() == f; })) {
      const std::string name = it.key().substr(0, 64);
      return Status::Invalid("unknown field " + name, name);
    }
  }
  return Status::Ok();
}

Status ParseTypes(const json& body, WebhookConfig* c) {
  const json* types = body.contains("types") ? &body["types"] : nullptr;
  if (!types || !types->is_array() || types->empty() || types->size() > kMaxTypes) {
    return Status::Invalid("types must be a list of 1 to " + std::to_string(kMaxTypes) +
                               " event type names, \"digest\" or \"*\"",
                           "types");
  }
  for (const json& t : *types) {
    if (!t.is_string()) return Status::Invalid("every type must be a string", "types");
    const std::string name = t.get<std::string>();
    if (name != kDigestType && name != kEveryType && !EventTypeNamed(name)) {
      return Status::Invalid("unknown event type " + name.substr(0, 64), "types");
    }
    if (std::find(c->types.begin(), c->types.end(), name) == c->types.end())
      c->types.push_back(name);
  }
  return Status::Ok();
}

Status ParseUrlAndSecret(const json& body, WebhookConfig* c) {
  // Never the URL in a message: it may be a credential (a Slack URL).
  if (!body.contains("url") || !body["url"].is_string()) {
    return Status::Invalid("url must be a string", "url");
  }
  c->url = body["url"].get<std::string>();
  auto parts = SplitUrl(c->url);
  if (!parts) {
    return Status::Invalid("url must be an http or https URL with a host (at most " +
                               std::to_string(kMaxUrlBytes) + " bytes, no user:password@)",
                           "url");
  }
  c->scheme = parts->scheme;
  c->host = parts->host;
  c->url_sha256 = ToHex(Sha256(c->url));
  if (!body.contains("secret") || !body["secret"].is_string() ||
      body["secret"].get_ref<const std::string&>().size() < kMinSecretBytes ||
      body["secret"].get_ref<const std::string&>().size() > kMaxSecretBytes) {
    return Status::Invalid("secret must be a string of " + std::to_string(kMinSecretBytes) +
                               " to " + std::to_string(kMaxSecretBytes) + " bytes",
                           "secret");
  }
  c->secret = body["secret"].get<std::string>();
  return Status::Ok();
}

}  // namespace

Result<WebhookConfig> ParseRegistration(const json& body) {
  if (!body.is_object()) return Status::Invalid("the body must be a JSON object");
  OKR_RETURN_IF_ERROR(CheckKnownFields(body));
  WebhookConfig c;
  if (!body.contains("id") || !body["id"].is_string() ||
      !ValidWebhookId(body["id"].get_ref<const std::string&>())) {
    return Status::Invalid("id must be 1 to 64 of a-z, 0-9 and -", "id");
  }
  c.id = body["id"].get<std::string>();
  OKR_RETURN_IF_ERROR(ParseUrlAndSecret(body, &c));
  OKR_RETURN_IF_ERROR(ParseTypes(body, &c));
  if (body.contains("cycle") && !body["cycle"].is_null()) {
    const json& cycle = body["cycle"];
    if (!cycle.is_string() || !ValidId(cycle.get_ref<const std::string&>())) {
      return Status::Invalid(std::string("cycle must be a cycle id: ") + kIdRule, "cycle");
    }
    c.cycle = cycle.get<std::string>();
  }
  assert(!c.url.empty() && !c.secret.empty() && !c.types.empty());
  return c;
}

const char* WebhookStateName(const DeliveryState& s) {
  return s.disabled ? "disabled" : s.failing_since_us != 0 ? "failing" : "active";
}

json WebhookInfoJson(const WebhookInfo& info) {
  const WebhookConfig& c = info.config;
  const DeliveryState& s = info.state;
  assert(c.url.empty() && c.secret.empty());  // never shown
  return {
      {"id", c.id},
      {"types", c.types},
      {"cycle", c.cycle.empty() ? json(nullptr) : json(c.cycle)},
      {"scheme", c.scheme},
      {"host", c.host},
      {"url_sha256", c.url_sha256},
      {"state", WebhookStateName(s)},
      {"cursor", s.cursor},
      {"failing_since",
       s.failing_since_us == 0 ? json(nullptr) : json(FormatTimeUs(s.failing_since_us))},
      {"last_digest_day",
       s.digest_day < 0 ? json(nullptr) : json(FormatDate(s.digest_day * int64_t{86'400'000'000}))},
      {"registered_seq", info.registered_seq}};
}

}  // namespace okr::webhooks
