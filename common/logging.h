// Logging through spdlog. Never log secrets, tokens, passwords or message
// text: ids, sizes and status codes only.
#ifndef PARLEY_COMMON_LOGGING_H_
#define PARLEY_COMMON_LOGGING_H_

#include <spdlog/spdlog.h>

#include <string>

namespace parley {

// Sets the default logger's level ("info", "debug", ...) and format.
void InitLogging(const std::string& level);

}  // namespace parley

#endif  // PARLEY_COMMON_LOGGING_H_
