#include "tests/support/cluster.h"

#include <signal.h>

#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "services/client/health_check.h"

namespace parley::testing {
namespace {

// Why a wait status is not a clean stop, or "" if it is one. SIGKILL and
// SIGTERM are what tests and teardown send; anything else (a sanitizer's
// non-zero exit, SIGABRT, SIGSEGV) is a bug in the service.
std::string AbnormalExit(int status) {
  if (WIFEXITED(status)) {
    const int code = WEXITSTATUS(status);
    return code == 0 ? "" : absl::StrCat("exited with code ", code);
  }
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    if (sig == SIGKILL || sig == SIGTERM || sig == SIGINT) return "";
    return absl::StrCat("died of signal ", sig, " (", strsignal(sig), ")");
  }
  return "";
}

std::string LogTail(const std::string& path, size_t lines) {
  std::ifstream in(path);
  std::vector<std::string> tail;
  for (std::string line; std::getline(in, line);) {
    tail.push_back(std::move(line));
    if (tail.size() > lines) tail.erase(tail.begin());
  }
  return absl::StrJoin(tail, "\n");
}

}  // namespace

absl::StatusOr<std::unique_ptr<Cluster>> Cluster::Start(Options options) {
  std::unique_ptr<Cluster> c(new Cluster());
  c->options_ = options;
  c->dir_ = MakeTempDir("parley-cluster-");
  auto pg = TestPostgres::Start();
  if (!pg.ok()) return pg.status();
  c->postgres_ = std::move(*pg);
  auto redis = TestRedis::Start();
  if (!redis.ok()) return redis.status();
  c->redis_ = std::move(*redis);

  // Every process serves and calls with the one server certificate.
  std::vector<std::string> internal_tls, gateway_tls;
  if (options.tls) {
    auto certs = TestCerts::Create(c->dir_);
    if (!certs.ok()) return certs.status();
    c->certs_ = *certs;
    auto client_tls = TlsCredentials::LoadClient(
        certs->ca, certs->client_cert, certs->client_key);
    if (!client_tls.ok()) return client_tls.status();
    c->client_tls_ = *client_tls;
    internal_tls = {"--internal_tls_ca_file=" + certs->ca,
                    "--internal_tls_cert_file=" + certs->server_cert,
                    "--internal_tls_key_file=" + certs->server_key};
    gateway_tls = {"--tls_cert_file=" + certs->server_cert,
                   "--tls_key_file=" + certs->server_key};
  }

  const std::string bin = BinDir();
  // Each process binds port 0 and reports the port it got; it is started
  // before the next one is configured, which needs its address.
  absl::Status launched = absl::OkStatus();
  auto add = [&](const std::string& name, std::vector<std::string> argv) {
    if (!launched.ok()) return;
    Proc p;
    argv.push_back("--log_level=info");
    argv.insert(argv.end(), internal_tls.begin(), internal_tls.end());
    if (absl::StartsWith(name, "gateway")) {
      argv.insert(argv.end(), gateway_tls.begin(), gateway_tls.end());
    }
    auto extra = options.extra_flags.find(name);
    if (extra != options.extra_flags.end()) {
      argv.insert(argv.end(), extra->second.begin(), extra->second.end());
    }
    p.argv = std::move(argv);
    c->procs_[name] = std::move(p);
    c->order_.push_back(name);
    launched = c->Launch(name);
  };
  add("storage", {bin + "/parley-storage",
                  "--postgres_url=" + c->postgres_->url(), "--pool_size=8"});
  const std::string storage_addr = c->address("storage");
  add("presence",
      {bin + "/parley-presence", "--redis_url=" + c->redis_->url(),
       "--storage_addr=" + storage_addr,
       absl::StrCat("--route_ttl_ms=", options.route_ttl.count()),
       absl::StrCat("--typing_ttl_ms=", options.typing_ttl.count()),
       absl::StrCat("--offline_grace_ms=", options.offline_grace.count())});
  const std::string presence_addr = c->address("presence");
  std::vector<std::string> message_addrs;
  for (int i = 0; i < options.message_instances; ++i) {
    const std::string name = absl::StrCat("message", i);
    add(name, {bin + "/parley-message", "--storage_addr=" + storage_addr,
               "--presence_addr=" + presence_addr,
               absl::StrCat("--node_id=", i)});
    message_addrs.push_back(c->address(name));
  }
  for (int i = 0; i < options.gateways; ++i) {
    add(absl::StrCat("gateway", i),
        {bin + "/parley-gateway", "--storage_addr=" + storage_addr,
         "--presence_addr=" + presence_addr,
         "--message_addrs=" + absl::StrJoin(message_addrs, ","),
         absl::StrCat("--gateway_id=test-gw-", i),
         absl::StrCat("--heartbeat_interval_ms=",
                      options.heartbeat_interval.count()),
         absl::StrCat("--max_group_members=", options.max_group_members),
         // Cheaper password hashing keeps the suites fast; production uses
         // libsodium's interactive limits.
         "--password_hash_ops=1", "--password_hash_mem_kib=8192"});
  }
  if (!launched.ok()) return launched;
  return c;
}

Cluster::~Cluster() {
  // Gateways first, storage last, so nothing logs spurious failures.
  for (auto it = order_.rbegin(); it != order_.rend(); ++it) {
    Proc& p = procs_[*it];
    if (p.process && p.process->running()) {
      p.process->Signal(SIGTERM);
      if (p.process->Wait(std::chrono::seconds(10)) < 0) {
        ADD_FAILURE() << *it << " did not stop within 10 s of SIGTERM; see "
                      << dir_ << "/" << *it << ".log";
        keep_logs_ = true;
        p.process->Kill();
        continue;
      }
    }
    CheckExit(*it);
  }
  procs_.clear();
  redis_.reset();
  postgres_.reset();
  if (!keep_logs_ && std::getenv("PARLEY_KEEP_TEST_LOGS") == nullptr) {
    RemoveTree(dir_);
  }
}

std::string Cluster::address(const std::string& name) const {
  auto it = procs_.find(name);
  return it == procs_.end() ? "" : absl::StrCat("127.0.0.1:", it->second.port);
}

std::string Cluster::gateway_address(int i) const {
  return address(absl::StrCat("gateway", i));
}

Subprocess* Cluster::process(const std::string& name) {
  auto it = procs_.find(name);
  return it == procs_.end() ? nullptr : it->second.process.get();
}

absl::Status Cluster::Launch(const std::string& name) {
  Proc& p = procs_[name];
  const std::string port_file = absl::StrCat(dir_, "/", name, ".port");
  std::remove(port_file.c_str());
  // First start: port 0, the kernel picks. A restart keeps the port, since
  // the other processes hold the address.
  std::vector<std::string> argv = p.argv;
  argv.push_back(absl::StrCat("--listen=127.0.0.1:", p.port));
  argv.push_back("--port_file=" + port_file);
  auto proc = Subprocess::Start(argv, absl::StrCat(dir_, "/", name, ".log"));
  if (!proc.ok()) return proc.status();
  p.process = std::move(*proc);
  auto port = WaitForPortFile(port_file, std::chrono::seconds(30));
  if (!port.ok()) return port.status();
  p.port = *port;
  return WaitServing(name, std::chrono::seconds(30));
}

absl::Status Cluster::Restart(const std::string& name) {
  auto it = procs_.find(name);
  if (it == procs_.end()) return absl::NotFoundError(name);
  if (it->second.process) {
    // A process that already ended by itself is checked before it is replaced.
    if (!it->second.process->running()) CheckExit(name);
    it->second.process->Kill();
  }
  return Launch(name);
}

void Cluster::CheckExit(const std::string& name) {
  Subprocess* p = process(name);
  if (p == nullptr || !p->wait_status()) return;
  const std::string why = AbnormalExit(*p->wait_status());
  if (why.empty()) return;
  const std::string log = absl::StrCat(dir_, "/", name, ".log");
  keep_logs_ = true;
  ADD_FAILURE() << name << " " << why << "; last lines of " << log << ":\n"
                << LogTail(log, 60);
}

absl::Status Cluster::WaitServing(const std::string& name,
                                  std::chrono::milliseconds timeout) {
  const auto end = std::chrono::steady_clock::now() + timeout;
  absl::Status last = absl::DeadlineExceededError("not started");
  while (std::chrono::steady_clock::now() < end) {
    Subprocess* p = process(name);
    if (p == nullptr || !p->running()) {
      return absl::UnavailableError(
          absl::StrCat(name, " exited; see ", dir_, "/", name, ".log"));
    }
    auto status = client::CheckHealth(
        address(name), "", std::chrono::milliseconds(500), client_tls_);
    if (status.ok() && *status == client::HealthStatus::kServing) {
      return absl::OkStatus();
    }
    last = status.ok() ? absl::UnavailableError("NOT_SERVING") : status.status();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return absl::DeadlineExceededError(
      absl::StrCat(name, " not serving: ", last.ToString(), "; see ", dir_,
                   "/", name, ".log"));
}

void SharedClusterTest::StartCluster(Cluster::Options options) {
  auto c = Cluster::Start(std::move(options));
  ASSERT_TRUE(c.ok()) << c.status();
  cluster_ = c->release();
}

void SharedClusterTest::TearDownTestSuite() {
  delete cluster_;
  cluster_ = nullptr;
}

}  // namespace parley::testing
