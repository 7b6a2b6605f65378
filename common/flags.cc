#include "common/flags.h"

#include <malloc.h>
#include <signal.h>

#include <cstdlib>
#include <iostream>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
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
  // Few malloc arenas: streamed 1 MiB chunks passing through many threads
  // otherwise leave tens of MiB parked in per-thread arenas. The usual
  // MALLOC_ARENA_MAX environment variable still overrides this.
  if (std::getenv("MALLOC_ARENA_MAX") == nullptr) mallopt(M_ARENA_MAX, 2);
  // Debian's Abseil is built with the mutex deadlock detector on; it records
  // a lock graph and stack traces on every contended absl::Mutex, gRPC's
  // included, which cost several percent of the CPU under load (perf).
  // TSan and the tests cover lock order instead.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);

  // --help lists Parley's own flags (from services/ and common/), not the
  // libraries'; --helpfull lists everything.
  absl::FlagsUsageConfig usage_config;
  usage_config.contains_help_flags = [](absl::string_view path) {
    return absl::StrContains(path, "services/") ||
           absl::StrContains(path, "common/");
  };
  usage_config.contains_helpshort_flags = usage_config.contains_help_flags;
  absl::SetFlagsUsageConfig(usage_config);
  absl::SetProgramUsageMessage(
      absl::StrCat(usage,
                   "\nEvery flag --name may also be set as PARLEY_NAME in the "
                   "environment (upper case); the command line wins."));
  if (absl::Status s = ApplyEnvironmentFallbacks(std::getenv); !s.ok()) {
    std::cerr << s.message() << "\n";
    std::exit(2);
  }
  std::vector<char*> rest = absl::ParseCommandLine(argc, argv);
  InitLogging(absl::GetFlag(FLAGS_log_level));
  return rest;
}

absl::Status ApplyEnvironmentFallbacks(
    const std::function<const char*(const char*)>& getenv) {
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    const std::string env =
        absl::StrCat("PARLEY_", absl::AsciiStrToUpper(std::string(name)));
    if (const char* value = getenv(env.c_str())) {
      std::string error;
      if (!flag->ParseFrom(value, &error)) {
        return absl::InvalidArgumentError(
            absl::StrCat("invalid value in ", env, ": ", error));
      }
    }
  }
  return absl::OkStatus();
}

std::vector<std::string> ParseAddressList(absl::string_view list) {
  std::vector<std::string> out;
  for (absl::string_view entry : absl::StrSplit(list, ',')) {
    // "a:1, b:2" is a natural way to write a list, but a target with a
    // blank in front never resolves: blanks around an entry are dropped.
    entry = absl::StripAsciiWhitespace(entry);
    if (!entry.empty()) out.emplace_back(entry);
  }
  return out;
}

}  // namespace parley
