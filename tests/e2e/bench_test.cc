// parley-bench against a real cluster: a short run of each load scenario
// must account for every message it scheduled, acknowledged and delivered
// exactly once, or the figures it prints for bigger runs cannot be trusted.
#include <cstdint>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "tests/support/cluster.h"
#include "tests/support/subprocess.h"

namespace parley::e2e {
namespace {

// The raw value of the first `"key":` in a flat JSON object (up to the next
// ',' or '}'); nullopt when it is missing.
std::optional<std::string> Field(const std::string& json,
                                 const std::string& key) {
  const std::string needle = absl::StrCat("\"", key, "\":");
  const size_t at = json.find(needle);
  if (at == std::string::npos) return std::nullopt;
  const size_t begin = at + needle.size();
  const size_t end = json.find_first_of(",}", begin);
  return json.substr(begin, end - begin);
}

// The integer value of `"key":`.
std::optional<int64_t> Int(const std::string& json, const std::string& key) {
  std::optional<std::string> raw = Field(json, key);
  int64_t v;
  if (!raw || !absl::SimpleAtoi(*raw, &v)) return std::nullopt;
  return v;
}

// The last line of file `path` that starts with `prefix` (a benchmark's
// JSON summary); empty when there is none.
std::string LastLineStartingWith(const std::string& path,
                                 const std::string& prefix) {
  std::ifstream in(path);
  std::string line, last;
  while (std::getline(in, line)) {
    if (line.rfind(prefix, 0) == 0) last = line;
  }
  return last;
}

class BenchTest : public testing::SharedClusterTest {
 protected:
  static void SetUpTestSuite() {
    testing::Cluster::Options options;
    // The load comes from few users: the per-user abuse limits are off, as
    // scripts/bench runs the cluster.
    options.extra_flags["gateway0"] = {
        "--write_rate=0", "--typing_rate=0", "--connect_rate=0",
        "--connect_burst=1000000", "--max_streams_per_user=0"};
    StartCluster(options);
  }

  // Runs parley-bench with `args`; returns its JSON summary line.
  std::string RunBench(const std::vector<std::string>& args) {
    const std::string dir = testing::MakeTempDir("parley-bench-test");
    const std::string log = dir + "/bench.log";
    std::vector<std::string> argv = {testing::BinDir() + "/parley-bench",
                                     "--gateway",
                                     cluster_->gateway_address(0),
                                     "--json",
                                     "--channels",
                                     "4",
                                     "--warmup",
                                     "0.5",
                                     "--drain",
                                     "5"};
    argv.insert(argv.end(), args.begin(), args.end());
    const int code = testing::RunCommand(argv, log);
    const std::string summary = LastLineStartingWith(log, "{\"scenario\":");
    EXPECT_EQ(code, 0) << "parley-bench failed; see " << log;
    EXPECT_FALSE(summary.empty()) << "no JSON summary in " << log;
    if (code == 0) testing::RemoveTree(dir);
    return summary;
  }
};

TEST_F(BenchTest, DirectRunAccountsForEverySend) {
  const std::string json = RunBench({"--scenario", "direct", "--clients", "20",
                                     "--rate", "200", "--duration", "2"});
  // 200/s for 2.5 s (warmup included).
  EXPECT_EQ(Int(json, "scheduled"), 500) << json;
  EXPECT_EQ(Int(json, "sent"), 500) << json;
  EXPECT_EQ(Int(json, "acked"), 500) << json;
  EXPECT_EQ(Int(json, "undelivered"), 0) << json;
  EXPECT_EQ(Int(json, "errors"), 0) << json;
}

TEST_F(BenchTest, GroupRunDeliversToEveryOtherMember) {
  const std::string json =
      RunBench({"--scenario", "group", "--group-size", "10", "--groups", "2",
                "--rate", "40", "--duration", "2"});
  EXPECT_EQ(Int(json, "scheduled"), 100) << json;
  EXPECT_EQ(Int(json, "acked"), 100) << json;
  EXPECT_EQ(Int(json, "undelivered"), 0) << json;
  EXPECT_EQ(Int(json, "errors"), 0) << json;
}

TEST_F(BenchTest, ConnectionsRunHoldsEveryStream) {
  const std::string json = RunBench(
      {"--scenario", "connections", "--clients", "300", "--duration", "1"});
  EXPECT_EQ(Int(json, "held"), 300) << json;
  EXPECT_EQ(Int(json, "errors"), 0) << json;
}

// parley-threading-bench runs its own server process: a short run of each
// API must answer every ping of its window and read the server's counters.
TEST(ThreadingBenchTest, EveryPingIsAnsweredOnEachApi) {
  const std::string dir = testing::MakeTempDir("parley-threading-bench-test");
  const std::string log = dir + "/bench.log";
  const int code = testing::RunCommand(
      {testing::BinDir() + "/parley-threading-bench", "--rate", "2000",
       "--duration", "0.5", "--warmup", "0.2", "--streams", "20", "--channels",
       "4", "--json"},
      log);
  const std::string summary = LastLineStartingWith(log, "{\"rate\":");
  ASSERT_EQ(code, 0) << "parley-threading-bench failed; see " << log;
  ASSERT_FALSE(summary.empty()) << "no JSON summary in " << log;
  // One result per API: the callback API, 1 and 2 queue threads, then one
  // queue thread beside an idle callback service and beside a sync one.
  std::vector<std::string> apis;
  std::vector<std::string> parts = absl::StrSplit(summary, "{\"api\":");
  for (size_t i = 1; i < parts.size(); ++i) {
    const std::string result = "{\"api\":" + parts[i];
    apis.push_back(absl::StrCat(Field(result, "api").value_or("?"), "/",
                                Int(result, "cq_threads").value_or(-1)));
    // 2,000/s for 0.5 s.
    EXPECT_EQ(Int(result, "sent"), 1000) << result;
    EXPECT_EQ(Int(result, "answered"), 1000) << result;
    double cpu = 0;
    EXPECT_TRUE(absl::SimpleAtod(
        Field(result, "server_cpu_percent").value_or(""), &cpu))
        << result;
    EXPECT_GT(cpu, 0) << result;
  }
  EXPECT_EQ(apis,
            (std::vector<std::string>{"\"callback\"/0", "\"cq\"/1", "\"cq\"/2",
                                      "\"cq+callback\"/1", "\"cq+sync\"/1"}))
      << summary;
  testing::RemoveTree(dir);
}

}  // namespace
}  // namespace parley::e2e
