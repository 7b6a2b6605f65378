// A throwaway PostgreSQL server for one test suite.
//
//   auto pg = parley::testing::TestPostgres::Start();
//   ASSERT_TRUE(pg.ok());
//   std::string url = (*pg)->url();  // postgresql://...@127.0.0.1:PORT/parley
#ifndef PARLEY_TESTS_SUPPORT_TEST_POSTGRES_H_
#define PARLEY_TESTS_SUPPORT_TEST_POSTGRES_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace parley::testing {

class TestPostgres {
 public:
  // initdb in a temp dir (as the postgres user when running as root), start
  // on a free loopback port with pg_ctl -w, create database "parley".
  static absl::StatusOr<std::unique_ptr<TestPostgres>> Start();
  ~TestPostgres();  // pg_ctl stop -m immediate, remove the directory.

  // libpq URL of the "parley" database.
  std::string url() const;
  int port() const { return port_; }
  // Stops and starts the server again on the same port and data.
  absl::Status Restart();
  // Stops the server; Restart() brings it back. kImmediate is a crash: no
  // checkpoint, and the next start runs crash recovery.
  enum class StopMode { kFast, kImmediate };
  void Stop(StopMode mode);

 private:
  TestPostgres() = default;
  std::string dir_;
  int port_ = 0;
};

}  // namespace parley::testing

#endif  // PARLEY_TESTS_SUPPORT_TEST_POSTGRES_H_
