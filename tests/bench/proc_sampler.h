// CPU and resident memory of a set of local processes, sampled from /proc.
//
//   std::vector<WatchTarget> targets = DiscoverCluster(50051, &notes);
//   ProcSampler sampler(targets, std::chrono::milliseconds(250));
//   sampler.Start();
//   ...                                  // the measured window
//   sampler.Stop();
//   for (const ProcUsage& u : sampler.Usage()) ...
#ifndef PARLEY_TESTS_BENCH_PROC_SAMPLER_H_
#define PARLEY_TESTS_BENCH_PROC_SAMPLER_H_

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"

namespace parley::bench {

// One watched service: a process and, with `with_children`, its direct
// children (PostgreSQL's backends).
struct WatchTarget {
  std::string name;
  pid_t pid = 0;
  bool with_children = false;
};

// Finds the services of the scripts/up cluster whose gateway listens on
// `gateway_port` (message +1, presence +2, storage +3, PostgreSQL +4,
// Redis +5), by /proc/*/comm and the port in /proc/*/cmdline. Appends a
// line to *notes for every service not found.
std::vector<WatchTarget> DiscoverCluster(int gateway_port,
                                         std::vector<std::string>* notes);

// Parses "name=pid,name=pid".
absl::StatusOr<std::vector<WatchTarget>> ParseWatchList(
    const std::string& list);

// Resident set of one process in KiB; -1 when it cannot be read.
int64_t ProcessRssKib(pid_t pid);

// What one process has used so far: CPU time of all its threads, and their
// context switches, voluntary and not (threads that have ended no longer
// count).
struct ProcCounters {
  double cpu_seconds = 0;
  int64_t context_switches = 0;
};
absl::StatusOr<ProcCounters> ReadProcCounters(pid_t pid);

struct ProcUsage {
  std::string name;
  double cpu_percent = 0;  // of one core, over the sampled window
  int64_t peak_rss_kib = 0;
  int processes = 0;  // processes summed in the last sample
};

// Samples every target each `interval` on a thread of its own between
// Start() and Stop().
class ProcSampler {
 public:
  ProcSampler(std::vector<WatchTarget> targets,
              std::chrono::milliseconds interval);
  ~ProcSampler();
  ProcSampler(const ProcSampler&) = delete;
  ProcSampler& operator=(const ProcSampler&) = delete;

  void Start();
  void Stop();
  // CPU% = (utime+stime ticks used between the first and the last sample)
  // / (ticks per second * wall time between them).
  std::vector<ProcUsage> Usage() const;

 private:
  struct PerPid {
    pid_t pid;
    uint64_t ticks;
  };
  struct State {
    std::vector<PerPid> last;  // previous sample
    uint64_t used_ticks = 0;
    int64_t peak_rss_kib = 0;
    int processes = 0;
  };

  void Loop();
  void SampleOnce(std::chrono::steady_clock::time_point now);

  const std::vector<WatchTarget> targets_;
  const std::chrono::milliseconds interval_;
  mutable std::mutex mu_;
  std::vector<State> states_;
  std::chrono::steady_clock::time_point first_, last_;
  int samples_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace parley::bench

#endif  // PARLEY_TESTS_BENCH_PROC_SAMPLER_H_
