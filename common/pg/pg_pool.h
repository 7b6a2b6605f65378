// A fixed-size pool of PostgreSQL connections and the one place where
// libpqxx exceptions become absl::Status.
//
//   parley::PgPoolOptions opts;
//   opts.url = "postgresql://127.0.0.1:50055/parley";
//   opts.size = 8;
//   auto pool = parley::PgPool::Create(opts);
//   if (!pool.ok()) return pool.status();
//   int64_t id = 0;
//   absl::Status s = (*pool)->Transact([&](pqxx::work& tx) -> absl::Status {
//     pqxx::result r = tx.exec_params("SELECT user_id FROM users WHERE username
//     = $1", name); if (r.empty()) return absl::NotFoundError("username: not
//     found"); id = r[0][0].as<int64_t>(); return absl::OkStatus();
//   });
//
// The callback may run more than once (serialization failures, deadlocks and
// connections broken before commit are retried), so it must only touch the
// transaction and outputs it fully overwrites.
#ifndef PARLEY_COMMON_PG_PG_POOL_H_
#define PARLEY_COMMON_PG_PG_POOL_H_

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace parley {

struct PgPoolOptions {
  // libpq connection URL or keyword string.
  std::string url;
  // Number of connections.
  int size = 8;
  // How long Transact waits for a free connection before UNAVAILABLE.
  std::chrono::milliseconds acquire_timeout{5000};
  // statement_timeout set on every new connection; 0 disables it.
  int statement_timeout_ms = 5000;
  // Attempts for a transaction that fails with a serialization failure, a
  // deadlock or a connection broken before commit (first try included).
  int max_attempts = 4;
  // Called once on every new connection, e.g. to prepare statements.
  std::function<void(pqxx::connection&)> on_connect;
};

class PgPool {
 public:
  // Validates the options and opens one connection to check the URL;
  // UNAVAILABLE when the server cannot be reached.
  static absl::StatusOr<std::unique_ptr<PgPool>> Create(PgPoolOptions options);
  // Like Create but connects lazily, so it cannot fail on an unreachable
  // server (the first Transact will).
  explicit PgPool(PgPoolOptions options);
  ~PgPool();

  PgPool(const PgPool&) = delete;
  PgPool& operator=(const PgPool&) = delete;

  // Runs `fn` in a read-committed read-write transaction and commits when it
  // returns OK; a non-OK status rolls back and is returned as is.
  absl::Status Transact(const std::function<absl::Status(pqxx::work&)>& fn);
  // Runs `fn` in a REPEATABLE READ READ ONLY transaction: one consistent
  // snapshot for all its queries.
  absl::Status ReadOnly(const std::function<absl::Status(pqxx::work&)>& fn);

  int size() const { return static_cast<int>(slots_.size()); }
  // Connections currently checked out (for tests and metrics).
  int in_use() const;

 private:
  struct Slot {
    std::unique_ptr<pqxx::connection> conn;
  };

  absl::Status Run(const std::function<absl::Status(pqxx::work&)>& fn,
                   bool read_only);
  // Blocks up to acquire_timeout for a free slot; returns its index.
  absl::StatusOr<int> Acquire();
  void Release(int index);
  // Makes sure the slot holds an open connection, connecting if needed.
  absl::Status EnsureConnected(Slot& slot);

  const PgPoolOptions options_;
  std::vector<Slot> slots_;  // slot i is only touched by whoever acquired i
  // std::mutex rather than absl::Mutex: Debian's Abseil is not built with
  // ThreadSanitizer annotations, so TSan could not see absl::Mutex's ordering.
  mutable std::mutex mu_;
  std::condition_variable freed_;
  std::vector<int> free_ ABSL_GUARDED_BY(mu_);
};

// What a caught exception means for the caller.
struct PgErrorInfo {
  absl::Status status;
  // Worth running the whole transaction again.
  bool retryable = false;
  // The connection is unusable and must be dropped.
  bool drop_connection = false;
};

// Maps an exception thrown by libpqxx (or by code inside a transaction) to a
// status. Messages never include server text, which may quote user data.
//   pqxx::unique_violation               -> ALREADY_EXISTS
//   pqxx::foreign_key_violation          -> NOT_FOUND
//   serialization_failure, deadlock      -> ABORTED (retryable)
//   broken_connection                    -> UNAVAILABLE (retryable, dropped)
//   in_doubt_error                       -> UNAVAILABLE (dropped, not retried)
//   query_canceled (statement timeout)   -> UNAVAILABLE
//   anything else                        -> INTERNAL
PgErrorInfo ClassifyPgException(std::exception_ptr error);

// One schema migration: numbered SQL applied at most once.
struct Migration {
  int version = 0;
  std::string name;
  std::string sql;
};

// Applies, in version order and in one transaction held under
// pg_advisory_xact_lock, every migration not yet recorded in
// schema_migrations(version, name, applied_at), creating that table if
// needed. Safe when several processes start together. Returns how many were
// applied (0 when the schema was already current).
absl::StatusOr<int> ApplyMigrations(PgPool& pool,
                                    std::vector<Migration> migrations);

}  // namespace parley

#endif  // PARLEY_COMMON_PG_PG_POOL_H_
