// Command-line parsing with environment fallbacks.
//
// Every flag --some_name may also be given as PARLEY_SOME_NAME in the
// environment; the command line wins.
//
//   ABSL_FLAG(std::string, listen, "127.0.0.1:50054", "address to serve on");
//   int main(int argc, char** argv) {
//     parley::InitProcess(argc, argv, "parley-storage: durable state");
//     ...
#ifndef PARLEY_COMMON_FLAGS_H_
#define PARLEY_COMMON_FLAGS_H_

#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace parley {

// Blocks SIGINT/SIGTERM in this and all later threads (so RunServer can wait
// for them), applies PARLEY_* environment fallbacks, parses flags (handling
// --help), and sets up logging from --log_level. Call first thing in main.
std::vector<char*> InitProcess(int argc, char** argv, absl::string_view usage);

// Sets every registered flag --name whose PARLEY_NAME variable `getenv`
// returns. INVALID_ARGUMENT naming the variable when a value does not parse.
absl::Status ApplyEnvironmentFallbacks(
    const std::function<const char*(const char*)>& getenv);

// Splits a comma-separated list of addresses ("host:port, host:port"),
// dropping blanks around entries and empty entries.
std::vector<std::string> ParseAddressList(absl::string_view list);

}  // namespace parley

#endif  // PARLEY_COMMON_FLAGS_H_
