// libFuzzer target: what the command-line client parses: its arguments,
// the session file, health check responses (decoded by hand), and the
// escaping of server text before it reaches a terminal.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "services/client/cli.h"
#include "services/client/format.h"
#include "services/client/health_check.h"
#include "services/client/session.h"
#include "tests/fuzz/fuzz_check.h"

using namespace parley::client;  // NOLINT: a fuzz target of one namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view in(reinterpret_cast<const char*>(data), size);

  // argv: the input split at NUL bytes.
  const std::vector<std::string> args = absl::StrSplit(in, '\0');
  auto parsed = ParseArgs(args);
  if (parsed.ok()) {
    FUZZ_CHECK(parsed->help || !parsed->command.empty(), "a command or --help");
  } else {
    FUZZ_CHECK(parsed.status().code() == absl::StatusCode::kInvalidArgument,
               "bad arguments are INVALID_ARGUMENT");
  }

  // The session file: parsing what was serialized gives it back.
  const Session session = ParseSession(std::string(in));
  const Session again = ParseSession(SerializeSession(session));
  FUZZ_CHECK(again.gateway == session.gateway && again.user_id == session.user_id &&
                 again.username == session.username &&
                 again.access_token == session.access_token,
             "session round trip");

  // No control character survives escaping (C0, DEL, and C1 as UTF-8).
  const std::string line = EscapeForLine(in);
  for (size_t i = 0; i < line.size(); ++i) {
    const auto c = static_cast<unsigned char>(line[i]);
    FUZZ_CHECK(c >= 0x20 && c != 0x7F, "C0 or DEL in an escaped line");
    if (c == 0xC2 && i + 1 < line.size()) {
      const auto next = static_cast<unsigned char>(line[i + 1]);
      FUZZ_CHECK(next < 0x80 || next > 0x9F, "C1 in an escaped line");
    }
  }

  auto health = DecodeHealthCheckResponse(in);
  if (!health.ok()) {
    FUZZ_CHECK(health.status().code() == absl::StatusCode::kInvalidArgument,
               "malformed health responses are INVALID_ARGUMENT");
  }
  // What the encoder writes for a service name, a server would not send,
  // but it must decode as a well-formed message all the same.
  FUZZ_CHECK(DecodeHealthCheckResponse(EncodeHealthCheckRequest(in.substr(0, 64))).ok(),
             "a well-formed message decodes");
  return 0;
}
