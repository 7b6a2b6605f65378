// parley-bench against a real cluster: a short run of each load scenario
// must account for every message it scheduled, acknowledged and delivered
// exactly once, or the figures it prints for bigger runs cannot be trusted.
#include <cstdint>
#include <fstream>
#include <map>
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
  // queue thread beside an idle callback service and beside a sync one, and
  // after one call of its own through each of those APIs.
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
  EXPECT_EQ(apis, (std::vector<std::string>{
                      "\"callback\"/0", "\"cq\"/1", "\"cq\"/2",
                      "\"cq+callback\"/1", "\"cq+sync\"/1",
                      "\"cq+callback-call\"/1", "\"cq+sync-call\"/1"}))
      << summary;
  testing::RemoveTree(dir);
}

// scripts/bench-compare's table, from run files as its runs leave them: a
// row per run (a run without a JSON summary shows dashes) and the medians
// of each variant.
TEST(BenchCompareTest, SummarizesEachRunAndTheMediansOfEachVariant) {
  const std::string dir = testing::MakeTempDir("parley-bench-compare-test");
  auto run_file = [&](const std::string& name, double p99, double gateway) {
    std::ofstream out(dir + "/" + name + ".txt");
    out << "a progress line\n"
        << absl::StrCat(
               "{\"scenario\":\"direct\",\"delivered_per_s\":1000.0,"
               "\"deliveries_per_s\":1000.0,\"delivery_p50_ms\":2.5,"
               "\"delivery_p99_ms\":",
               p99, ",\"errors\":0,\"services\":{\"gateway\":{\"cpu_percent\":",
               gateway, ",\"peak_rss_kib\":1}}}\n");
  };
  run_file("1-a", 10, 30);
  run_file("1-b", 20, 40);
  run_file("2-b", 30, 44);
  run_file("2-a", 14, 34);
  run_file("3-a", 12, 32);
  std::ofstream(dir + "/3-b.txt") << "the run failed before its summary\n";

  const std::string log = dir + "/compare.log";
  ASSERT_EQ(testing::RunCommand(
                {std::string(PARLEY_SOURCE_DIR) + "/scripts/bench-compare",
                 "--summarize", dir},
                log),
            0)
      << "see " << log;
  // Rows by their first word: "1-a" ... "3-b", and "med a" / "med b".
  std::map<std::string, std::vector<std::string>> rows;
  std::ifstream in(log);
  std::string line;
  std::vector<std::string> header;
  while (std::getline(in, line)) {
    std::vector<std::string> cells =
        absl::StrSplit(line, ' ', absl::SkipWhitespace());
    if (cells.empty()) continue;
    if (cells[0] == "run") header = cells;
    if (cells[0] == "med" && cells.size() > 1) {
      cells[0] = "med " + cells[1];
      cells.erase(cells.begin() + 1);
    }
    rows[cells[0]] = cells;
  }
  ASSERT_FALSE(header.empty()) << "no header in " << log;
  // Columns: run, delivered/s, deliveries/s, p50, p99, errors, then one
  // CPU% per process.
  auto cell = [&](const std::string& row, size_t column) {
    return rows.count(row) && rows[row].size() > column ? rows[row][column]
                                                        : "missing";
  };
  EXPECT_EQ(cell("1-a", 4), "10");
  EXPECT_EQ(cell("2-b", 4), "30");
  EXPECT_EQ(cell("2-b", 6), "44");
  EXPECT_EQ(cell("3-b", 4), "-");
  EXPECT_EQ(cell("med a", 1), "1000.0");
  EXPECT_EQ(cell("med a", 4), "12.000");  // 10, 14, 12
  EXPECT_EQ(cell("med b", 4), "25.000");  // 20, 30
  EXPECT_EQ(cell("med a", 6), "32.0");
  EXPECT_EQ(cell("med b", 6), "42.0");
  EXPECT_EQ(cell("med b", 7), "-");  // message: never sampled
  testing::RemoveTree(dir);
}

}  // namespace
}  // namespace parley::e2e
