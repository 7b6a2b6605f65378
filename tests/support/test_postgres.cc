#include "tests/support/test_postgres.h"

#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "tests/support/subprocess.h"

namespace parley::testing {
namespace {

constexpr char kSuperuser[] = "postgres";

std::string PgBinDir() {
  std::string out;
  if (FILE* p = popen("pg_config --bindir 2>/dev/null", "r")) {
    char buf[512];
    while (fgets(buf, sizeof buf, p)) out += buf;
    pclose(p);
  }
  out = std::string(absl::StripAsciiWhitespace(out));
  if (out.empty() || !std::filesystem::exists(out + "/pg_ctl")) {
    out = "/usr/lib/postgresql/15/bin";
  }
  return out;
}

bool RunningAsRoot() { return geteuid() == 0; }

// Server binaries refuse to run as root: run them as "postgres" then.
std::vector<std::string> AsServerUser(std::vector<std::string> argv) {
  if (!RunningAsRoot()) return argv;
  std::vector<std::string> wrapped = {
      std::filesystem::exists("/usr/sbin/runuser") ? "/usr/sbin/runuser"
                                                   : "/sbin/runuser",
      "-u", kSuperuser, "--"};
  wrapped.insert(wrapped.end(), argv.begin(), argv.end());
  return wrapped;
}

absl::Status ChownTree(const std::string& dir) {
  const passwd* pw = getpwnam(kSuperuser);
  if (pw == nullptr) {
    return absl::FailedPreconditionError("no 'postgres' user to run as");
  }
  if (chown(dir.c_str(), pw->pw_uid, pw->pw_gid) != 0) {
    return absl::InternalError(absl::StrCat("chown ", dir, " failed"));
  }
  return absl::OkStatus();
}

std::string ReadFile(const std::string& path) {
  std::string out;
  if (FILE* f = fopen(path.c_str(), "r")) {
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
    fclose(f);
  }
  return out;
}

}  // namespace

absl::StatusOr<std::unique_ptr<TestPostgres>> TestPostgres::Start() {
  const std::string bin = PgBinDir();
  std::unique_ptr<TestPostgres> pg(new TestPostgres());
  pg->dir_ = MakeTempDir("parley-pg-");
  if (pg->dir_.empty()) return absl::InternalError("cannot create temp dir");
  if (RunningAsRoot()) {
    if (absl::Status s = ChownTree(pg->dir_); !s.ok()) return s;
  }
  const std::string data = pg->dir_ + "/data";
  const std::string log = pg->dir_ + "/setup.log";
  if (RunCommand(AsServerUser({bin + "/initdb", "-D", data, "-A", "trust", "-U",
                               kSuperuser, "-E", "UTF8", "--locale=C",
                               "--no-sync", "--no-instructions"}),
                 log) != 0) {
    return absl::InternalError(absl::StrCat("initdb failed: ", ReadFile(log)));
  }
  // A free port can be taken by someone else before the server binds it.
  absl::Status started;
  for (int attempt = 0; attempt < 5; ++attempt) {
    pg->port_ = FreePort();
    started = pg->Restart();
    if (started.ok()) break;
  }
  if (!started.ok()) return started;
  if (RunCommand({bin + "/createdb", "-h", "127.0.0.1", "-p",
                  std::to_string(pg->port_), "-U", kSuperuser, "parley"},
                 log) != 0) {
    return absl::InternalError(
        absl::StrCat("createdb failed: ", ReadFile(log)));
  }
  return pg;
}

TestPostgres::~TestPostgres() {
  if (dir_.empty()) return;
  RunCommand(AsServerUser({PgBinDir() + "/pg_ctl", "-D", dir_ + "/data", "-m",
                           "immediate", "-w", "stop"}),
             "/dev/null");
  RemoveTree(dir_);
}

std::string TestPostgres::url() const {
  return absl::StrCat("postgresql://", kSuperuser, "@127.0.0.1:", port_,
                      "/parley");
}

void TestPostgres::Stop(StopMode mode) {
  RunCommand(AsServerUser({PgBinDir() + "/pg_ctl", "-D", dir_ + "/data", "-m",
                           mode == StopMode::kImmediate ? "immediate" : "fast",
                           "-w", "stop"}),
             dir_ + "/setup.log");
}

absl::Status TestPostgres::Restart() {
  const std::string bin = PgBinDir();
  const std::string data = dir_ + "/data";
  const std::string log = dir_ + "/setup.log";
  // Stopping a server that is not running fails harmlessly.
  Stop(StopMode::kFast);
  const std::string options =
      absl::StrCat("-p ", port_, " -k ", dir_,
                   " -c listen_addresses=127.0.0.1 -c fsync=off"
                   " -c synchronous_commit=off -c full_page_writes=off"
                   " -c max_connections=200");
  if (RunCommand(
          AsServerUser({bin + "/pg_ctl", "-D", data, "-l", dir_ + "/server.log",
                        "-o", options, "-w", "-t", "60", "start"}),
          log) != 0) {
    return absl::UnavailableError(absl::StrCat("pg_ctl start failed on port ",
                                               port_, ": ",
                                               ReadFile(dir_ + "/server.log")));
  }
  return absl::OkStatus();
}

}  // namespace parley::testing
