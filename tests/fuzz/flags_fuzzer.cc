// libFuzzer target: configuration from the environment (every flag may come
// as PARLEY_NAME, common/flags.h) and the comma-separated address lists.
// The input is split at NUL bytes into values for flags of every type the
// services declare.
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "common/flags.h"
#include "tests/fuzz/fuzz_check.h"

ABSL_FLAG(std::string, fuzz_string, "", "");
ABSL_FLAG(int, fuzz_int, 0, "");
ABSL_FLAG(int64_t, fuzz_int64, 0, "");
ABSL_FLAG(uint64_t, fuzz_uint64, 0, "");
ABSL_FLAG(bool, fuzz_bool, false, "");

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view in(reinterpret_cast<const char*>(data), size);
  const std::vector<std::string> values = absl::StrSplit(in, '\0');
  static const char* const kVars[] = {
      "PARLEY_FUZZ_STRING", "PARLEY_FUZZ_INT",      "PARLEY_FUZZ_INT64",
      "PARLEY_FUZZ_UINT64", "PARLEY_FUZZ_BOOL",     "PARLEY_LOG_LEVEL"};
  std::map<std::string, std::string> env;
  for (size_t i = 0; i < values.size() && i < std::size(kVars); ++i) {
    env[kVars[i]] = values[i];
  }
  const absl::Status s = parley::ApplyEnvironmentFallbacks(
      [&env](const char* name) -> const char* {
        auto it = env.find(name);
        return it == env.end() ? nullptr : it->second.c_str();
      });
  if (!s.ok()) {
    FUZZ_CHECK(s.code() == absl::StatusCode::kInvalidArgument, "INVALID_ARGUMENT");
    FUZZ_CHECK(s.message().find("PARLEY_") != absl::string_view::npos,
               "the error names the variable");
  } else if (!values.empty()) {
    FUZZ_CHECK(absl::GetFlag(FLAGS_fuzz_string) == values[0].c_str(),
               "a string flag takes the value verbatim");
  }

  for (const std::string& addr : parley::ParseAddressList(in)) {
    FUZZ_CHECK(!addr.empty(), "no empty address");
    FUZZ_CHECK(addr.find(',') == std::string::npos, "split at every comma");
    FUZZ_CHECK(!absl::ascii_isspace(addr.front()) && !absl::ascii_isspace(addr.back()),
               "no whitespace around an address");
  }
  return 0;
}
