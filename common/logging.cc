#include "common/logging.h"

#include <google/protobuf/stubs/logging.h>
#include <spdlog/sinks/stdout_sinks.h>

namespace parley {
namespace {

// Protobuf writes its own log lines straight to stderr, among them one for
// every request whose string field holds invalid UTF-8 (the request is then
// refused by gRPC): any client could fill the log at will. Its lines go
// through our logger instead, those caused by client input at debug level.
void LogProtobuf(google::protobuf::LogLevel level, const char* filename,
                 int line, const std::string& message) {
  if (message.find("invalid UTF-8 data when parsing") != std::string::npos) {
    spdlog::debug("protobuf: {}", message);
    return;
  }
  switch (level) {
    case google::protobuf::LOGLEVEL_INFO:
      spdlog::info("protobuf {}:{}: {}", filename, line, message);
      break;
    case google::protobuf::LOGLEVEL_WARNING:
      spdlog::warn("protobuf {}:{}: {}", filename, line, message);
      break;
    default:
      spdlog::error("protobuf {}:{}: {}", filename, line, message);
      break;
  }
}

}  // namespace

void InitLogging(const std::string& level) {
  auto logger = spdlog::stderr_logger_mt("parley");
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ [%t] %v");
  logger->set_level(spdlog::level::from_str(level));
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
  google::protobuf::SetLogHandler(&LogProtobuf);
}

}  // namespace parley
