// Helpers shared by the benchmark programs: command-line walking with
// environment fallbacks, latency percentiles and JSON output.
//
//   ArgReader args(argc, argv);
//   while (args.Next()) {
//     if (args.name() == "--rate" && !args.Number(1, &rate)) return false;
//   }
#ifndef PARLEY_TESTS_BENCH_BENCH_UTIL_H_
#define PARLEY_TESTS_BENCH_BENCH_UTIL_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace parley::bench {

// Walks argv, accepting both "--name value" and "--name=value". Value
// readers print "error: INVALID_ARGUMENT: ..." and return false when the
// value is missing or malformed.
class ArgReader {
 public:
  ArgReader(int argc, char** argv) : argc_(argc), argv_(argv) {}

  // Moves to the next argument; false once all were read.
  bool Next();
  // The current argument without any "=value" part.
  const std::string& name() const { return name_; }

  // The value of the current option (inline or the next argument);
  // `what` names the expected value in the error message.
  bool Value(const char* what, std::string* out);
  // A whole number >= min.
  bool Count(int64_t min, int64_t* out);
  bool Count(int min, int* out);
  // A number >= min.
  bool Number(double min, double* out);

 private:
  const int argc_;
  char** const argv_;
  int index_ = 0;
  std::string name_;
  std::string inline_value_;
  bool has_inline_value_ = false;
};

// Sets *out to the environment variable `name` when it is set and not empty.
void EnvDefault(const char* name, std::string* out);

// A random string of `chars` lower-case hex digits.
std::string RandomHex(int chars);

// Nearest-rank summary of latencies, in milliseconds.
struct Summary {
  size_t count = 0;
  double min = 0, p50 = 0, p90 = 0, p99 = 0, p999 = 0, max = 0, mean = 0;
};

// Summarizes durations given in microseconds.
Summary Summarize(std::vector<double> us);

// {"count":..,"min":..,"p50":..,"p90":..,"p99":..,"p999":..,"max":..,
// "mean":..} in milliseconds.
std::string SummaryJson(const Summary& s);

// Prints a "latency (ms)" table to stdout: one row per named summary with
// count, min, p50, p90, p99, p99.9, max and mean.
void PrintLatencyTable(
    const std::vector<std::pair<std::string, Summary>>& rows);

// `s` as a quoted JSON string.
std::string JsonString(const std::string& s);

}  // namespace parley::bench

#endif  // PARLEY_TESTS_BENCH_BENCH_UTIL_H_
