// A throwaway Redis server for one test suite.
//
//   auto redis = parley::testing::TestRedis::Start();
//   std::string url = (*redis)->url();  // redis://127.0.0.1:PORT/0
#ifndef PARLEY_TESTS_SUPPORT_TEST_REDIS_H_
#define PARLEY_TESTS_SUPPORT_TEST_REDIS_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace parley::testing {

class Subprocess;

class TestRedis {
 public:
  static absl::StatusOr<std::unique_ptr<TestRedis>> Start();
  ~TestRedis();

  std::string url() const;
  int port() const { return port_; }
  // Stops the server (SIGKILL); Start() again brings it back on the same port.
  void Stop();
  absl::Status StartAgain();

 private:
  TestRedis() = default;
  std::string dir_;
  int port_ = 0;
  std::unique_ptr<Subprocess> process_;
};

}  // namespace parley::testing

#endif  // PARLEY_TESTS_SUPPORT_TEST_REDIS_H_
