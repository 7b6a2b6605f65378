// The saved sign-in of the command-line client: a small private file of
// `key=value` lines written by `parley register` and `parley login`.
//
//   Session s{.gateway = "127.0.0.1:50051", .user_id = "17",
//             .username = "alice", .access_token = token};
//   absl::Status st = SaveSession(DefaultSessionPath(), s);  // mode 0600
//   absl::StatusOr<Session> back = LoadSession(DefaultSessionPath());
#ifndef PARLEY_SERVICES_CLIENT_SESSION_H_
#define PARLEY_SERVICES_CLIENT_SESSION_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace parley::client {

struct Session {
  std::string gateway;
  std::string user_id;
  std::string username;
  std::string access_token;
  // CA file that verifies the gateway's TLS certificate; empty: plaintext.
  std::string tls_ca_file;
};

// $PARLEY_SESSION if set, else $HOME/.config/parley/session.
std::string DefaultSessionPath();

// NOT_FOUND when the file does not exist.
absl::StatusOr<Session> LoadSession(const std::string& path);

// Atomically replaces the file (mode 0600), creating its directory (0700).
absl::Status SaveSession(const std::string& path, const Session& session);

// Removes the file; OK if it did not exist.
absl::Status DeleteSession(const std::string& path);

// The file's text form, and its parser (unknown keys are ignored).
std::string SerializeSession(const Session& session);
Session ParseSession(const std::string& text);

}  // namespace parley::client

#endif  // PARLEY_SERVICES_CLIENT_SESSION_H_
