#include "tests/bench/bench_util.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <random>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"

namespace parley::bench {

bool ArgReader::Next() {
  if (++index_ >= argc_) return false;
  name_ = argv_[index_];
  has_inline_value_ = false;
  inline_value_.clear();
  if (const size_t eq = name_.find('=');
      name_.rfind("--", 0) == 0 && eq != std::string::npos) {
    inline_value_ = name_.substr(eq + 1);
    name_.resize(eq);
    has_inline_value_ = true;
  }
  return true;
}

bool ArgReader::Value(const char* what, std::string* out) {
  if (has_inline_value_) {
    *out = inline_value_;
    return true;
  }
  if (index_ + 1 >= argc_) {
    std::cerr << "error: INVALID_ARGUMENT: " << name_ << " needs " << what
              << "\n";
    return false;
  }
  *out = argv_[++index_];
  return true;
}

bool ArgReader::Count(int64_t min, int64_t* out) {
  std::string v;
  if (!Value("a number", &v)) return false;
  if (!absl::SimpleAtoi(v, out) || *out < min) {
    std::cerr << "error: INVALID_ARGUMENT: " << name_
              << " needs a whole number >= " << min << "\n";
    return false;
  }
  return true;
}

bool ArgReader::Count(int min, int* out) {
  int64_t v = 0;
  if (!Count(static_cast<int64_t>(min), &v)) return false;
  if (v > INT32_MAX) {
    std::cerr << "error: INVALID_ARGUMENT: " << name_ << " is too large\n";
    return false;
  }
  *out = static_cast<int>(v);
  return true;
}

bool ArgReader::Number(double min, double* out) {
  std::string v;
  if (!Value("a number", &v)) return false;
  if (!absl::SimpleAtod(v, out) || !std::isfinite(*out) || *out < min) {
    std::cerr << "error: INVALID_ARGUMENT: " << name_
              << " needs a number >= " << min << "\n";
    return false;
  }
  return true;
}

void EnvDefault(const char* name, std::string* out) {
  if (const char* v = std::getenv(name); v != nullptr && *v) *out = v;
}

std::string RandomHex(int chars) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::random_device rd;
  std::string out;
  for (int i = 0; i < chars; ++i) out.push_back(kHex[rd() & 0xf]);
  return out;
}

Summary Summarize(std::vector<double> us) {
  Summary s;
  s.count = us.size();
  if (us.empty()) return s;
  std::sort(us.begin(), us.end());
  auto rank = [&](double p) {
    const size_t r = static_cast<size_t>(std::ceil(p / 100.0 * us.size()));
    return us[std::min(us.size() - 1, r == 0 ? 0 : r - 1)] / 1000.0;
  };
  s.min = us.front() / 1000.0;
  s.max = us.back() / 1000.0;
  s.p50 = rank(50);
  s.p90 = rank(90);
  s.p99 = rank(99);
  s.p999 = rank(99.9);
  double sum = 0;
  for (double v : us) sum += v;
  s.mean = sum / us.size() / 1000.0;
  return s;
}

std::string SummaryJson(const Summary& s) {
  return absl::StrFormat(
      "{\"count\":%d,\"min\":%.3f,\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,"
      "\"p999\":%.3f,\"max\":%.3f,\"mean\":%.3f}",
      s.count, s.min, s.p50, s.p90, s.p99, s.p999, s.max, s.mean);
}

void PrintLatencyTable(
    const std::vector<std::pair<std::string, Summary>>& rows) {
  std::printf("%-16s %7s %9s %9s %9s %9s %9s %9s %9s\n", "latency (ms)",
              "count", "min", "p50", "p90", "p99", "p99.9", "max", "mean");
  for (const auto& [name, s] : rows) {
    std::printf("%-16s %7zu %9.3f %9.3f %9.3f %9.3f %9.3f %9.3f %9.3f\n",
                name.c_str(), s.count, s.min, s.p50, s.p90, s.p99, s.p999,
                s.max, s.mean);
  }
}

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += absl::StrFormat("\\u%04x", c);
    } else {
      out += c;
    }
  }
  return out + "\"";
}

}  // namespace parley::bench
