#include "common/flags.h"

#include <signal.h>

#include <cstdlib>
#include <iostream>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/logging.h"

ABSL_FLAG(std::string, log_level, "info",
          "Log level: trace, debug, info, warn, error, off.");

namespace parley {

std::vector<char*> InitProcess(int argc, char** argv, absl::string_view usage) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);

  absl::SetProgramUsageMessage(
      absl::StrCat(usage,
                   "\nEvery flag --name may also be set as PARLEY_NAME in the "
                   "environment (upper case); the command line wins."));
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    const std::string env =
        absl::StrCat("PARLEY_", absl::AsciiStrToUpper(std::string(name)));
    if (const char* value = std::getenv(env.c_str())) {
      std::string error;
      if (!flag->ParseFrom(value, &error)) {
        std::cerr << "invalid value in " << env << ": " << error << "\n";
        std::exit(2);
      }
    }
  }
  std::vector<char*> rest = absl::ParseCommandLine(argc, argv);
  InitLogging(absl::GetFlag(FLAGS_log_level));
  return rest;
}

}  // namespace parley
