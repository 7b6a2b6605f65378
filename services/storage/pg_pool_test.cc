// PgPool: exception mapping (unit) and pool behaviour against PostgreSQL.
#include "common/pg/pg_pool.h"

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "tests/support/test_postgres.h"

namespace parley {
namespace {

template <typename E>
PgErrorInfo ClassifyThrown(E e) {
  return ClassifyPgException(std::make_exception_ptr(e));
}

TEST(ClassifyPgExceptionTest, MapsBySqlState) {
  const char* q = "INSERT ...";
  EXPECT_EQ(
      ClassifyThrown(pqxx::unique_violation("dup", q, "23505")).status.code(),
      absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(ClassifyThrown(pqxx::foreign_key_violation("fk", q, "23503"))
                .status.code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(
      ClassifyThrown(pqxx::sql_error("timeout", q, "57014")).status.code(),
      absl::StatusCode::kUnavailable);
  EXPECT_EQ(ClassifyThrown(pqxx::sql_error("syntax", q, "42601")).status.code(),
            absl::StatusCode::kInternal);
  const PgErrorInfo shutdown = ClassifyThrown(pqxx::sql_error("x", q, "57P01"));
  EXPECT_EQ(shutdown.status.code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(shutdown.drop_connection);
}

TEST(ClassifyPgExceptionTest, MapsByType) {
  const PgErrorInfo ser = ClassifyThrown(pqxx::serialization_failure("s"));
  EXPECT_EQ(ser.status.code(), absl::StatusCode::kAborted);
  EXPECT_TRUE(ser.retryable);
  const PgErrorInfo dead = ClassifyThrown(pqxx::deadlock_detected("d"));
  EXPECT_EQ(dead.status.code(), absl::StatusCode::kAborted);
  EXPECT_TRUE(dead.retryable);
  const PgErrorInfo broken = ClassifyThrown(pqxx::broken_connection("b"));
  EXPECT_EQ(broken.status.code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(broken.retryable);
  EXPECT_TRUE(broken.drop_connection);
  const PgErrorInfo doubt = ClassifyThrown(pqxx::in_doubt_error("i"));
  EXPECT_EQ(doubt.status.code(), absl::StatusCode::kUnavailable);
  EXPECT_FALSE(doubt.retryable);
  EXPECT_EQ(ClassifyThrown(pqxx::unique_violation("dup")).status.code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(ClassifyThrown(std::runtime_error("boom")).status.code(),
            absl::StatusCode::kInternal);
}

TEST(ClassifyPgExceptionTest, MessageNeverQuotesServerText) {
  const PgErrorInfo info = ClassifyThrown(pqxx::unique_violation(
      "Key (username)=(secret-user) already exists", "INSERT", "23505"));
  EXPECT_EQ(std::string(info.status.message()).find("secret-user"),
            std::string::npos);
  const PgErrorInfo other = ClassifyThrown(
      pqxx::sql_error("value 'private text' is bad", "SELECT", "22P02"));
  EXPECT_EQ(std::string(other.status.message()).find("private"),
            std::string::npos);
}

class PgPoolTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto pg = testing::TestPostgres::Start();
    ASSERT_TRUE(pg.ok()) << pg.status();
    pg_ = pg->release();
  }
  static void TearDownTestSuite() {
    delete pg_;
    pg_ = nullptr;
  }
  void SetUp() override { ASSERT_NE(pg_, nullptr); }

  static PgPoolOptions Options(int size = 2) {
    PgPoolOptions o;
    o.url = pg_->url();
    o.size = size;
    return o;
  }

  static testing::TestPostgres* pg_;
};

testing::TestPostgres* PgPoolTest::pg_ = nullptr;

TEST_F(PgPoolTest, CommitsOnOkAndRollsBackOnError) {
  PgPool pool(Options());
  ASSERT_TRUE(pool.Transact([](pqxx::work& tx) {
                    tx.exec("CREATE TABLE t1 (v int PRIMARY KEY)");
                    return absl::OkStatus();
                  })
                  .ok());
  absl::Status s = pool.Transact([](pqxx::work& tx) {
    tx.exec("INSERT INTO t1 VALUES (1)");
    return absl::NotFoundError("nope");
  });
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(s.message(), "nope");
  ASSERT_TRUE(pool.Transact([](pqxx::work& tx) {
                    tx.exec("INSERT INTO t1 VALUES (2)");
                    return absl::OkStatus();
                  })
                  .ok());
  int64_t count = -1;
  ASSERT_TRUE(pool.ReadOnly([&](pqxx::work& tx) {
                    count =
                        tx.exec1("SELECT count(*) FROM t1")[0].as<int64_t>();
                    return absl::OkStatus();
                  })
                  .ok());
  EXPECT_EQ(count, 1);
  // Unique violation surfaces as ALREADY_EXISTS.
  s = pool.Transact([](pqxx::work& tx) {
    tx.exec("INSERT INTO t1 VALUES (2)");
    return absl::OkStatus();
  });
  EXPECT_EQ(s.code(), absl::StatusCode::kAlreadyExists);
  // Writes are refused in a read-only transaction.
  s = pool.ReadOnly([](pqxx::work& tx) {
    tx.exec("INSERT INTO t1 VALUES (3)");
    return absl::OkStatus();
  });
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
  EXPECT_EQ(pool.in_use(), 0);
}

TEST_F(PgPoolTest, ConnectionsAreNeverShared) {
  // Rollbacks and commits from many threads on a small pool: a connection
  // handed out while still in use would mix up protocol messages.
  PgPool pool(Options(2));
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 150; ++i) {
        const bool fail = (i + t) % 2 == 0;
        absl::Status s = pool.Transact([&](pqxx::work& tx) -> absl::Status {
          const int v = tx.exec_params1("SELECT $1::int", i)[0].as<int>();
          if (v != i) return absl::InternalError("crossed results");
          if (fail) return absl::FailedPreconditionError("rolled back");
          return absl::OkStatus();
        });
        const absl::StatusCode want =
            fail ? absl::StatusCode::kFailedPrecondition
                 : absl::StatusCode::kOk;
        if (s.code() != want) ++wrong;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(pool.in_use(), 0);
}

TEST_F(PgPoolTest, StatementTimeoutIsUnavailable) {
  PgPoolOptions o = Options();
  o.statement_timeout_ms = 100;
  PgPool pool(o);
  const auto start = std::chrono::steady_clock::now();
  absl::Status s = pool.Transact([](pqxx::work& tx) {
    tx.exec("SELECT pg_sleep(5)");
    return absl::OkStatus();
  });
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
  // The connection is still usable.
  EXPECT_TRUE(pool.Transact([](pqxx::work& tx) {
                    tx.exec("SELECT 1");
                    return absl::OkStatus();
                  })
                  .ok());
}

TEST_F(PgPoolTest, ExhaustedPoolIsUnavailable) {
  PgPoolOptions o = Options(1);
  o.acquire_timeout = std::chrono::milliseconds(100);
  PgPool pool(o);
  std::atomic<bool> holding{false};
  std::thread holder([&] {
    (void)pool.Transact([&](pqxx::work& tx) {
      holding = true;
      tx.exec("SELECT pg_sleep(0.6)");
      return absl::OkStatus();
    });
  });
  while (!holding) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  absl::Status s = pool.Transact([](pqxx::work&) { return absl::OkStatus(); });
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(s.message(), "database pool exhausted");
  holder.join();
  EXPECT_TRUE(pool.Transact([](pqxx::work&) { return absl::OkStatus(); }).ok());
}

TEST_F(PgPoolTest, SerializationFailuresAreRetried) {
  PgPool pool(Options(4));
  ASSERT_TRUE(pool.Transact([](pqxx::work& tx) {
                    tx.exec("CREATE TABLE counter (v int)");
                    tx.exec("INSERT INTO counter VALUES (0)");
                    return absl::OkStatus();
                  })
                  .ok());
  // Serializable read-modify-write from several threads: conflicts happen and
  // are retried; with enough attempts every increment lands.
  PgPoolOptions o = Options(4);
  o.max_attempts = 50;
  PgPool retrying(o);
  std::atomic<int> calls{0};
  std::atomic<int> failed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10; ++i) {
        absl::Status s = retrying.Transact([&](pqxx::work& tx) {
          ++calls;
          tx.exec("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE");
          const int v = tx.exec1("SELECT v FROM counter")[0].as<int>();
          std::this_thread::sleep_for(std::chrono::milliseconds(2));
          tx.exec_params("UPDATE counter SET v = $1", v + 1);
          return absl::OkStatus();
        });
        if (!s.ok()) ++failed;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failed.load(), 0);
  int value = 0;
  ASSERT_TRUE(pool.Transact([&](pqxx::work& tx) {
                    value = tx.exec1("SELECT v FROM counter")[0].as<int>();
                    return absl::OkStatus();
                  })
                  .ok());
  EXPECT_EQ(value, 40);
  EXPECT_GT(calls.load(), 40);  // some attempts were retried
}

TEST_F(PgPoolTest, ReconnectsAfterServerRestart) {
  PgPool pool(Options(2));
  auto ping = [&] {
    return pool.Transact([](pqxx::work& tx) {
      tx.exec("SELECT 1");
      return absl::OkStatus();
    });
  };
  ASSERT_TRUE(ping().ok());
  ASSERT_TRUE(pg_->Restart().ok());
  // The pooled connection is broken; the pool drops it and reconnects.
  EXPECT_TRUE(ping().ok()) << ping();
  EXPECT_TRUE(ping().ok());
}

TEST_F(PgPoolTest, UnreachableServerIsUnavailable) {
  PgPoolOptions o;
  o.url = "postgresql://127.0.0.1:1/parley?connect_timeout=2";
  auto pool = PgPool::Create(o);
  EXPECT_EQ(pool.status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace parley
