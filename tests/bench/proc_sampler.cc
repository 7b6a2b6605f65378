#include "tests/bench/proc_sampler.h"

#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace parley::bench {
namespace {

std::string ReadSmallFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

struct ProcStat {
  pid_t pid = 0;
  pid_t ppid = 0;
  uint64_t ticks = 0;  // utime + stime
  int64_t rss_kib = 0;
};

// Parses /proc/<pid>/stat; false when the process is gone.
bool ReadStat(pid_t pid, ProcStat* out) {
  const std::string text = ReadSmallFile(absl::StrCat("/proc/", pid, "/stat"));
  // The command name is in parentheses and may hold spaces: fields are
  // counted from the last ')'.
  const size_t close = text.rfind(')');
  if (close == std::string::npos) return false;
  std::vector<std::string> f =
      absl::StrSplit(text.substr(close + 1), ' ', absl::SkipEmpty());
  // f[0] is field 3 (state): field n is f[n - 3].
  if (f.size() < 22) return false;
  uint64_t utime = 0, stime = 0;
  int64_t rss_pages = 0;
  int ppid = 0;
  if (!absl::SimpleAtoi(f[1], &ppid) || !absl::SimpleAtoi(f[11], &utime) ||
      !absl::SimpleAtoi(f[12], &stime) ||
      !absl::SimpleAtoi(f[21], &rss_pages)) {
    return false;
  }
  static const int64_t page_kib = sysconf(_SC_PAGESIZE) / 1024;
  out->pid = pid;
  out->ppid = ppid;
  out->ticks = utime + stime;
  out->rss_kib = rss_pages * page_kib;
  return true;
}

std::vector<pid_t> ListPids() {
  std::vector<pid_t> pids;
  DIR* dir = opendir("/proc");
  if (dir == nullptr) return pids;
  while (dirent* e = readdir(dir)) {
    int pid = 0;
    if (absl::SimpleAtoi(e->d_name, &pid) && pid > 0) pids.push_back(pid);
  }
  closedir(dir);
  return pids;
}

std::string Comm(pid_t pid) {
  return std::string(absl::StripTrailingAsciiWhitespace(
      ReadSmallFile(absl::StrCat("/proc/", pid, "/comm"))));
}

// The command line with its NUL separators turned into spaces.
std::string Cmdline(pid_t pid) {
  std::string s = ReadSmallFile(absl::StrCat("/proc/", pid, "/cmdline"));
  std::replace(s.begin(), s.end(), '\0', ' ');
  return s;
}

}  // namespace

std::vector<WatchTarget> DiscoverCluster(int gateway_port,
                                         std::vector<std::string>* notes) {
  struct Wanted {
    const char* name;
    const char* comm;
    std::string needle;  // must occur in the command line
    bool with_children;
  };
  const std::vector<Wanted> wanted = {
      {"gateway", "parley-gateway", absl::StrCat(":", gateway_port, " "),
       false},
      {"message", "parley-message", absl::StrCat(":", gateway_port + 1, " "),
       false},
      {"presence", "parley-presence", absl::StrCat(":", gateway_port + 2, " "),
       false},
      {"storage", "parley-storage", absl::StrCat(":", gateway_port + 3, " "),
       false},
      // The postmaster; its children are the backends and helpers.
      {"postgres", "postgres", absl::StrCat("-p ", gateway_port + 4, " "),
       true},
      {"redis", "redis-server", absl::StrCat(":", gateway_port + 5), false},
  };
  std::vector<WatchTarget> found(wanted.size());
  for (pid_t pid : ListPids()) {
    const std::string comm = Comm(pid);
    for (size_t i = 0; i < wanted.size(); ++i) {
      if (found[i].pid != 0 || comm != wanted[i].comm) continue;
      // "--listen=127.0.0.1:52001 " (a trailing space follows every arg).
      if (Cmdline(pid).find(wanted[i].needle) == std::string::npos) continue;
      found[i] = {wanted[i].name, pid, wanted[i].with_children};
    }
  }
  std::vector<WatchTarget> out;
  for (size_t i = 0; i < wanted.size(); ++i) {
    if (found[i].pid != 0) {
      out.push_back(found[i]);
    } else if (notes != nullptr) {
      notes->push_back(absl::StrCat("no local ", wanted[i].comm,
                                    " process for this gateway's cluster "
                                    "(give it with --watch NAME=PID)"));
    }
  }
  return out;
}

absl::StatusOr<std::vector<WatchTarget>> ParseWatchList(
    const std::string& list) {
  std::vector<WatchTarget> out;
  for (absl::string_view item : absl::StrSplit(list, ',', absl::SkipEmpty())) {
    std::pair<std::string, std::string> kv = absl::StrSplit(item, '=');
    int pid = 0;
    if (kv.first.empty() || !absl::SimpleAtoi(kv.second, &pid) || pid <= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("--watch: expected NAME=PID, got '", item, "'"));
    }
    out.push_back({kv.first, pid, kv.first == "postgres"});
  }
  return out;
}

int64_t ProcessRssKib(pid_t pid) {
  ProcStat st;
  return ReadStat(pid, &st) ? st.rss_kib : -1;
}

absl::StatusOr<ProcCounters> ReadProcCounters(pid_t pid) {
  ProcStat st;
  if (!ReadStat(pid, &st)) {
    return absl::NotFoundError(absl::StrCat("no process ", pid));
  }
  static const double ticks_per_s = static_cast<double>(sysconf(_SC_CLK_TCK));
  ProcCounters c;
  c.cpu_seconds = static_cast<double>(st.ticks) / ticks_per_s;
  const std::string dir = absl::StrCat("/proc/", pid, "/task");
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return absl::NotFoundError(absl::StrCat("no ", dir));
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    const std::string status =
        ReadSmallFile(absl::StrCat(dir, "/", e->d_name, "/status"));
    for (absl::string_view line : absl::StrSplit(status, '\n')) {
      if (absl::ConsumePrefix(&line, "voluntary_ctxt_switches:") ||
          absl::ConsumePrefix(&line, "nonvoluntary_ctxt_switches:")) {
        int64_t n = 0;
        if (absl::SimpleAtoi(absl::StripAsciiWhitespace(line), &n)) {
          c.context_switches += n;
        }
      }
    }
  }
  closedir(d);
  return c;
}

ProcSampler::ProcSampler(std::vector<WatchTarget> targets,
                         std::chrono::milliseconds interval)
    : targets_(std::move(targets)),
      interval_(interval),
      states_(targets_.size()) {}

ProcSampler::~ProcSampler() { Stop(); }

void ProcSampler::Start() {
  stop_ = false;
  SampleOnce(std::chrono::steady_clock::now());
  thread_ = std::thread([this] { Loop(); });
}

void ProcSampler::Stop() {
  if (!thread_.joinable()) return;
  stop_ = true;
  thread_.join();
  SampleOnce(std::chrono::steady_clock::now());
}

void ProcSampler::Loop() {
  auto next = std::chrono::steady_clock::now() + interval_;
  while (!stop_) {
    std::this_thread::sleep_until(next);
    if (stop_) break;
    SampleOnce(std::chrono::steady_clock::now());
    next += interval_;
  }
}

void ProcSampler::SampleOnce(std::chrono::steady_clock::time_point now) {
  bool children = false;
  for (const WatchTarget& t : targets_) children |= t.with_children;
  std::vector<ProcStat> all;
  if (children) {
    for (pid_t pid : ListPids()) {
      ProcStat st;
      if (ReadStat(pid, &st)) all.push_back(st);
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  for (size_t i = 0; i < targets_.size(); ++i) {
    const WatchTarget& t = targets_[i];
    std::vector<ProcStat> procs;
    if (t.with_children) {
      for (const ProcStat& st : all) {
        if (st.pid == t.pid || st.ppid == t.pid) procs.push_back(st);
      }
    } else if (ProcStat st; ReadStat(t.pid, &st)) {
      procs.push_back(st);
    }
    State& s = states_[i];
    std::vector<PerPid> current;
    int64_t rss = 0;
    for (const ProcStat& st : procs) {
      current.push_back({st.pid, st.ticks});
      rss += st.rss_kib;
      // Only processes seen in both samples count: a backend that started
      // in between brings ticks from before the window.
      for (const PerPid& prev : s.last) {
        if (prev.pid == st.pid && st.ticks >= prev.ticks) {
          s.used_ticks += st.ticks - prev.ticks;
          break;
        }
      }
    }
    s.last = std::move(current);
    s.peak_rss_kib = std::max(s.peak_rss_kib, rss);
    s.processes = static_cast<int>(procs.size());
  }
  if (samples_++ == 0) first_ = now;
  last_ = now;
}

std::vector<ProcUsage> ProcSampler::Usage() const {
  std::lock_guard<std::mutex> lock(mu_);
  const double wall = std::chrono::duration<double>(last_ - first_).count();
  static const double ticks_per_s = sysconf(_SC_CLK_TCK);
  std::vector<ProcUsage> out;
  for (size_t i = 0; i < targets_.size(); ++i) {
    ProcUsage u;
    u.name = targets_[i].name;
    u.cpu_percent =
        wall > 0 ? 100.0 * states_[i].used_ticks / ticks_per_s / wall : 0;
    u.peak_rss_kib = states_[i].peak_rss_kib;
    u.processes = states_[i].processes;
    out.push_back(u);
  }
  return out;
}

}  // namespace parley::bench
