#include "services/client/client_status.h"

#include "absl/strings/str_cat.h"

namespace parley::client {

absl::Status StatusFromGrpc(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      status.error_message());
}

std::string FormatError(const absl::Status& status) {
  std::string message(status.message());
  if (message.empty()) message = "(no details)";
  return absl::StrCat("error: ", absl::StatusCodeToString(status.code()), ": ",
                      message);
}

}  // namespace parley::client
