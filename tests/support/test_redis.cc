#include "tests/support/test_redis.h"

#include "absl/strings/str_cat.h"
#include "tests/support/subprocess.h"

namespace parley::testing {

absl::StatusOr<std::unique_ptr<TestRedis>> TestRedis::Start() {
  std::unique_ptr<TestRedis> redis(new TestRedis());
  redis->dir_ = MakeTempDir("parley-redis-");
  if (redis->dir_.empty()) return absl::InternalError("mkdtemp failed");
  redis->port_ = FreePort();
  if (auto s = redis->StartAgain(); !s.ok()) return s;
  return redis;
}

absl::Status TestRedis::StartAgain() {
  auto p = Subprocess::Start(
      {"/usr/bin/redis-server", "--port", absl::StrCat(port_), "--bind",
       "127.0.0.1", "--dir", dir_, "--save", "", "--appendonly", "no",
       "--daemonize", "no"},
      dir_ + "/redis.log");
  if (!p.ok()) return p.status();
  process_ = std::move(*p);
  if (!WaitForTcp(port_, std::chrono::seconds(10))) {
    return absl::UnavailableError(
        absl::StrCat("redis did not start on ", port_));
  }
  return absl::OkStatus();
}

void TestRedis::Stop() {
  if (process_) process_->Kill();
  process_.reset();
}

TestRedis::~TestRedis() {
  Stop();
  RemoveTree(dir_);
}

std::string TestRedis::url() const {
  return absl::StrCat("redis://127.0.0.1:", port_, "/0");
}

}  // namespace parley::testing
