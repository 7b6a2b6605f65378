// A whole Parley deployment for end-to-end tests: a throwaway PostgreSQL and
// Redis, and the four real binaries (any number of gateways and message
// instances) on free loopback ports.
//
//   auto cluster = parley::testing::Cluster::Start({.gateways = 2});
//   ASSERT_TRUE(cluster.ok()) << cluster.status();
//   std::string addr = (*cluster)->gateway_address(0);
#ifndef PARLEY_TESTS_SUPPORT_CLUSTER_H_
#define PARLEY_TESTS_SUPPORT_CLUSTER_H_

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "absl/status/statusor.h"
#include "common/grpc_util.h"
#include "tests/support/subprocess.h"
#include "tests/support/test_postgres.h"
#include "tests/support/test_redis.h"
#include "tests/support/tls_certs.h"

namespace parley::testing {

class Cluster {
 public:
  struct Options {
    int gateways = 1;
    int message_instances = 1;
    std::chrono::milliseconds route_ttl{30000};
    std::chrono::milliseconds heartbeat_interval{10000};
    std::chrono::milliseconds typing_ttl{6000};
    std::chrono::milliseconds offline_grace{1000};
    int max_group_members = 10000;
    // Mutual TLS between the services and TLS on the gateways, with
    // certificates made for the run (see certs()).
    bool tls = false;
    // Extra flags per process name ("gateway0", "storage", ...).
    std::map<std::string, std::vector<std::string>> extra_flags = {};
  };

  static absl::StatusOr<std::unique_ptr<Cluster>> Start(Options options);
  // Stops every process with SIGTERM. A process that crashed, exited
  // non-zero (as sanitizers do on a finding) or did not stop in time is a
  // test failure, and its logs are kept.
  ~Cluster();

  std::string gateway_address(int i) const;
  std::string address(const std::string& name) const;
  TestPostgres* postgres() { return postgres_.get(); }
  TestRedis* redis() { return redis_.get(); }
  // Process names: storage, presence, message0.., gateway0..
  Subprocess* process(const std::string& name);
  // SIGKILLs a process and starts it again on the same port.
  absl::Status Restart(const std::string& name);
  // Waits until the process answers health checks with SERVING.
  absl::Status WaitServing(const std::string& name,
                           std::chrono::milliseconds timeout);
  const std::string& dir() const { return dir_; }
  // With Options::tls: the certificates the cluster runs with.
  const TestCerts& certs() const { return certs_; }
  // What a client presents: with Options::tls, the CA and a client
  // certificate (accepted by every process), else plaintext.
  const TlsCredentials& client_tls() const { return client_tls_; }

 private:
  struct Proc {
    std::vector<std::string> argv;
    int port = 0;
    std::unique_ptr<Subprocess> process;
  };
  Cluster() = default;
  absl::Status Launch(const std::string& name);
  // Adds a test failure if the process ended abnormally (a crash, or a
  // sanitizer's non-zero exit).
  void CheckExit(const std::string& name);

  Options options_;
  bool keep_logs_ = false;
  std::string dir_;
  std::unique_ptr<TestPostgres> postgres_;
  std::unique_ptr<TestRedis> redis_;
  TestCerts certs_;
  TlsCredentials client_tls_;
  std::map<std::string, Proc> procs_;
  std::vector<std::string> order_;
};

// A gtest suite whose tests share one cluster, started once per suite:
//
//   class FilesTest : public parley::testing::SharedClusterTest {
//    protected:
//     static void SetUpTestSuite() { StartCluster({.gateways = 2}); }
//   };
class SharedClusterTest : public ::testing::Test {
 protected:
  // Starts `cluster_`; a failure fails the suite and leaves it null.
  static void StartCluster(Cluster::Options options);
  static void TearDownTestSuite();

  inline static Cluster* cluster_ = nullptr;
};

}  // namespace parley::testing

#endif  // PARLEY_TESTS_SUPPORT_CLUSTER_H_
