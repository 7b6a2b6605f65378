#include "common/logging.h"

#include <spdlog/sinks/stdout_sinks.h>

namespace parley {

void InitLogging(const std::string& level) {
  auto logger = spdlog::stderr_logger_mt("parley");
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ [%t] %v");
  logger->set_level(spdlog::level::from_str(level));
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
}

}  // namespace parley
