#include "common/pg/pg_pool.h"

#include <algorithm>
#include <random>
#include <set>
#include <thread>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/logging.h"

namespace parley {
namespace {

// Key of the advisory lock that serialises migrations across processes.
constexpr int64_t kMigrationLockKey = 0x70617274'6c657931;  // "partley1"

PgErrorInfo FromSqlState(const std::string& state) {
  if (state == "23505") {
    return {absl::AlreadyExistsError("row already exists"), false, false};
  }
  if (state == "23503") {
    return {absl::NotFoundError("referenced row does not exist"), false, false};
  }
  if (state == "23502" || state == "23514" || state == "23P01") {
    return {
        absl::InvalidArgumentError("value rejected by a database constraint"),
        false, false};
  }
  if (state == "40001" || state == "40P01") {
    return {absl::AbortedError("database transaction conflict"), true, false};
  }
  if (state == "40003") {
    return {absl::UnavailableError("database statement outcome unknown"), false,
            true};
  }
  if (state == "57014") {
    return {absl::UnavailableError("database statement timed out"), false,
            false};
  }
  if (state == "55P03") {
    return {absl::UnavailableError("database lock not available"), false,
            false};
  }
  if (absl::StartsWith(state, "08") || state == "57P01" || state == "57P02" ||
      state == "57P03") {
    return {absl::UnavailableError("database connection lost"), true, true};
  }
  if (absl::StartsWith(state, "53")) {
    return {absl::UnavailableError("database out of resources"), false, false};
  }
  return {
      absl::InternalError(absl::StrCat("database error (sqlstate ",
                                       state.empty() ? "none" : state, ")")),
      false, false};
}

}  // namespace

PgErrorInfo ClassifyPgException(std::exception_ptr error) {
  try {
    std::rethrow_exception(error);
  } catch (const pqxx::in_doubt_error&) {
    return {absl::UnavailableError("database commit outcome unknown"), false,
            true};
  } catch (const pqxx::broken_connection&) {
    // Includes too_many_connections.
    return {absl::UnavailableError("database connection lost"), true, true};
  } catch (const pqxx::sql_error& e) {
    if (!e.sqlstate().empty()) return FromSqlState(e.sqlstate());
    // No SQLSTATE (e.g. constructed by hand): go by the exception type.
    try {
      throw;
    } catch (const pqxx::unique_violation&) {
      return FromSqlState("23505");
    } catch (const pqxx::foreign_key_violation&) {
      return FromSqlState("23503");
    } catch (const pqxx::serialization_failure&) {
      return FromSqlState("40001");
    } catch (const pqxx::deadlock_detected&) {
      return FromSqlState("40P01");
    } catch (const pqxx::statement_completion_unknown&) {
      return FromSqlState("40003");
    } catch (const pqxx::sql_error&) {
      return FromSqlState("");
    }
  } catch (const pqxx::serialization_failure&) {
    // transaction_rollback errors derive from failure, not sql_error, in 6.x.
    return FromSqlState("40001");
  } catch (const pqxx::deadlock_detected&) {
    return FromSqlState("40P01");
  } catch (const pqxx::statement_completion_unknown&) {
    return FromSqlState("40003");
  } catch (const pqxx::transaction_rollback&) {
    return {absl::AbortedError("database transaction rolled back"), true,
            false};
  } catch (const pqxx::conversion_error&) {
    return {absl::InternalError("database value conversion failed"), false,
            false};
  } catch (const pqxx::failure&) {
    return {absl::InternalError("database failure"), false, false};
  } catch (const std::exception&) {
    return {absl::InternalError("unexpected error in database transaction"),
            false, false};
  } catch (...) {
    return {absl::InternalError("unknown error in database transaction"), false,
            false};
  }
}

absl::StatusOr<std::unique_ptr<PgPool>> PgPool::Create(PgPoolOptions options) {
  if (options.url.empty()) {
    return absl::InvalidArgumentError("postgres_url: must not be empty");
  }
  if (options.size < 1) {
    return absl::InvalidArgumentError("pool_size: must be at least 1");
  }
  auto pool = std::make_unique<PgPool>(std::move(options));
  // Check the server now rather than on the first request.
  absl::Status s = pool->Transact([](pqxx::work& tx) {
    tx.exec("SELECT 1");
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return pool;
}

PgPool::PgPool(PgPoolOptions options) : options_(std::move(options)) {
  const int n = std::max(1, options_.size);
  slots_.resize(n);
  std::lock_guard<std::mutex> lock(mu_);
  for (int i = n - 1; i >= 0; --i) free_.push_back(i);
}

PgPool::~PgPool() = default;

int PgPool::in_use() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int>(slots_.size() - free_.size());
}

absl::StatusOr<int> PgPool::Acquire() {
  std::unique_lock<std::mutex> lock(mu_);
  if (!freed_.wait_for(lock, options_.acquire_timeout,
                       [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
                         return !free_.empty();
                       })) {
    return absl::UnavailableError("database pool exhausted");
  }
  // LIFO: the most recently used connection is the most likely to be open.
  const int index = free_.back();
  free_.pop_back();
  return index;
}

void PgPool::Release(int index) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    free_.push_back(index);
  }
  freed_.notify_one();
}

absl::Status PgPool::EnsureConnected(Slot& slot) {
  if (slot.conn && slot.conn->is_open()) return absl::OkStatus();
  slot.conn.reset();
  try {
    auto conn = std::make_unique<pqxx::connection>(options_.url);
    // Keep NOTICEs (e.g. "already exists, skipping") off stderr.
    conn->set_variable("client_min_messages", "warning");
    // A commit must be in the WAL before it is reported: callers acknowledge
    // writes (a sent message) on it. A server tuned with
    // synchronous_commit=off would otherwise lose the last acknowledged
    // transactions when it crashes, and hand their seqs to other messages.
    conn->set_variable("synchronous_commit", "on");
    if (options_.statement_timeout_ms > 0) {
      conn->set_variable("statement_timeout",
                         std::to_string(options_.statement_timeout_ms));
    }
    if (options_.on_connect) options_.on_connect(*conn);
    slot.conn = std::move(conn);
    return absl::OkStatus();
  } catch (const std::exception& e) {
    // libpq connection errors name host and port, never the password.
    spdlog::warn("cannot connect to PostgreSQL: {}", e.what());
    return absl::UnavailableError("database unavailable");
  }
}

absl::Status PgPool::Transact(
    const std::function<absl::Status(pqxx::work&)>& fn) {
  return Run(fn, /*read_only=*/false);
}

absl::Status PgPool::ReadOnly(
    const std::function<absl::Status(pqxx::work&)>& fn) {
  return Run(fn, /*read_only=*/true);
}

absl::Status PgPool::Run(const std::function<absl::Status(pqxx::work&)>& fn,
                         bool read_only) {
  thread_local std::minstd_rand rng(std::random_device{}());
  const int attempts = std::max(1, options_.max_attempts);
  for (int attempt = 1;; ++attempt) {
    absl::StatusOr<int> index = Acquire();
    if (!index.ok()) return index.status();
    Slot& slot = slots_[*index];
    if (absl::Status s = EnsureConnected(slot); !s.ok()) {
      Release(*index);
      return s;
    }
    absl::Status result;
    bool fn_returned = false;
    PgErrorInfo error;
    try {
      // The transaction must be gone before the slot is released: its
      // destructor would otherwise talk on a connection another thread owns.
      pqxx::work tx(*slot.conn);
      if (read_only) {
        tx.exec("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY");
      }
      result = fn(tx);
      fn_returned = true;
      if (result.ok()) {
        tx.commit();
      } else {
        tx.abort();
      }
    } catch (...) {
      error = ClassifyPgException(std::current_exception());
    }
    if (error.status.ok()) {
      Release(*index);
      return result;
    }
    if (error.drop_connection) slot.conn.reset();
    Release(*index);
    // fn decided to fail and only the rollback went wrong: its answer stands.
    if (fn_returned && !result.ok()) return result;
    if (!error.retryable || attempt >= attempts) {
      spdlog::debug("database transaction failed: {}", error.status.ToString());
      return error.status;
    }
    spdlog::debug("retrying database transaction (attempt {}): {}", attempt,
                  error.status.ToString());
    // Jittered backoff so that conflicting transactions do not collide again.
    std::uniform_int_distribution<int> jitter(1, 10 * attempt);
    std::this_thread::sleep_for(std::chrono::milliseconds(jitter(rng)));
  }
}

absl::StatusOr<int> ApplyMigrations(PgPool& pool,
                                    std::vector<Migration> migrations) {
  std::sort(migrations.begin(), migrations.end(),
            [](const Migration& a, const Migration& b) {
              return a.version < b.version;
            });
  for (size_t i = 0; i < migrations.size(); ++i) {
    if (migrations[i].version <= 0 ||
        (i > 0 && migrations[i].version == migrations[i - 1].version)) {
      return absl::InvalidArgumentError(
          absl::StrCat("migration version ", migrations[i].version,
                       " is not positive or not unique"));
    }
  }
  int applied = 0;
  std::vector<std::string> names;
  absl::Status s = pool.Transact([&](pqxx::work& tx) -> absl::Status {
    applied = 0;
    names.clear();
    // Timeouts are for requests, not for schema changes.
    tx.exec("SET LOCAL statement_timeout = 0");
    tx.exec_params("SELECT pg_advisory_xact_lock($1)", kMigrationLockKey);
    tx.exec(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version integer PRIMARY KEY,"
        " name text NOT NULL,"
        " applied_at timestamptz NOT NULL DEFAULT now())");
    std::set<int> done;
    for (const auto& row : tx.exec("SELECT version FROM schema_migrations")) {
      done.insert(row[0].as<int>());
    }
    for (const Migration& m : migrations) {
      if (done.count(m.version)) continue;
      tx.exec(m.sql);
      tx.exec_params(
          "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
          m.version, m.name);
      names.push_back(absl::StrCat(m.version, "_", m.name));
      ++applied;
    }
    if (!done.empty() && !migrations.empty() &&
        *done.rbegin() > migrations.back().version) {
      spdlog::warn("database schema version {} is newer than this binary's {}",
                   *done.rbegin(), migrations.back().version);
    }
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  for (const auto& n : names) spdlog::info("applied migration {}", n);
  return applied;
}

}  // namespace parley
