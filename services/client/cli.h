// The `parley` command line: argument parsing and command dispatch.
//
//   int main(int argc, char** argv) {
//     return parley::client::RunCli(
//         std::vector<std::string>(argv + 1, argv + argc));
//   }
#ifndef PARLEY_SERVICES_CLIENT_CLI_H_
#define PARLEY_SERVICES_CLIENT_CLI_H_

#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace parley::client {

inline constexpr char kDefaultGateway[] = "127.0.0.1:50051";

// Exit codes.
inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;  // the call failed, or not SERVING
inline constexpr int kExitUsage = 2;  // bad command line

struct ParsedArgs {
  std::string command;                         // empty with only --help
  std::vector<std::string> positionals;        // after the command
  std::map<std::string, std::string> options;  // "gateway" -> "host:port"
  bool help = false;
};

// Splits argv (without the program name) into command, positionals and
// options. Options may come anywhere, as `--name value` or `--name=value`;
// `--` ends them. Unknown options and wrong arity are INVALID_ARGUMENT.
absl::StatusOr<ParsedArgs> ParseArgs(const std::vector<std::string>& args);

// The full help text, or one command's usage.
std::string HelpText();
std::string CommandUsage(const std::string& command);

struct CliIo {
  std::istream* in = &std::cin;
  std::ostream* out = &std::cout;
  std::ostream* err = &std::cerr;
};

// Runs one command; returns the process exit code.
int RunCli(const std::vector<std::string>& args, CliIo io = CliIo());

}  // namespace parley::client

#endif  // PARLEY_SERVICES_CLIENT_CLI_H_
