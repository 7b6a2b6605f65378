// Child processes for tests: real servers started from their binaries.
//
//   auto p = parley::testing::Subprocess::Start({"/usr/bin/redis-server", "--port", "0"},
//                                                "/tmp/redis.log");
//   p->Kill(SIGKILL);
#ifndef PARLEY_TESTS_SUPPORT_SUBPROCESS_H_
#define PARLEY_TESTS_SUPPORT_SUBPROCESS_H_

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace parley::testing {

class Subprocess {
 public:
  // Starts argv[0] (a path) with argv; stdout and stderr go to `log_path`
  // (appended). `env` entries "K=V" are added to the inherited environment.
  static absl::StatusOr<std::unique_ptr<Subprocess>> Start(
      const std::vector<std::string>& argv, const std::string& log_path,
      const std::vector<std::string>& env = {});
  ~Subprocess();  // SIGKILL and reap if still running.

  pid_t pid() const { return pid_; }
  // Sends `sig`; returns immediately.
  void Signal(int sig);
  // Waits up to `timeout` for exit; returns the wait status or -1 on timeout.
  int Wait(std::chrono::milliseconds timeout);
  // SIGKILL and reap.
  void Kill();
  bool running();
  // The wait status once reaped (see waitpid), whoever reaped it.
  std::optional<int> wait_status() const { return wait_status_; }

 private:
  explicit Subprocess(pid_t pid) : pid_(pid) {}
  void Reaped(int status) {
    reaped_ = true;
    wait_status_ = status;
  }
  pid_t pid_;
  bool reaped_ = false;
  std::optional<int> wait_status_;
};

// Runs a command to completion; returns its exit code (or -1).
int RunCommand(const std::vector<std::string>& argv,
               const std::string& log_path);

// A TCP port on 127.0.0.1 that was free a moment ago.
int FreePort();
// A new empty directory under $TMPDIR (or /tmp).
std::string MakeTempDir(const std::string& prefix);
// Removes a directory tree.
void RemoveTree(const std::string& path);
// Directory holding the built binaries ($PARLEY_BIN_DIR).
std::string BinDir();
// Polls `path` until it holds a port number, up to `timeout`.
absl::StatusOr<int> WaitForPortFile(const std::string& path,
                                    std::chrono::milliseconds timeout);
// Polls until a TCP connect to 127.0.0.1:port succeeds, up to `timeout`.
bool WaitForTcp(int port, std::chrono::milliseconds timeout);

}  // namespace parley::testing

#endif  // PARLEY_TESTS_SUPPORT_SUBPROCESS_H_
