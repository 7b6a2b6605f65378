// parley-storage: the only service that talks to PostgreSQL.
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "absl/flags/flag.h"
#include "common/flags.h"
#include "common/grpc_util.h"
#include "common/logging.h"
#include "common/pg/pg_pool.h"
#include "common/thread_pool.h"
#include "common/tls_flags.h"
#include "services/storage/migrations.h"
#include "services/storage/pg_blob_store.h"
#include "services/storage/storage_repository.h"
#include "services/storage/storage_service.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:50054",
          "host:port to serve gRPC on; port 0 picks a free port.");
ABSL_FLAG(std::string, port_file, "",
          "If set, the bound port is written to this file once serving.");
ABSL_FLAG(std::string, postgres_url, "postgresql://127.0.0.1:50055/parley",
          "libpq connection URL of the database.");
ABSL_FLAG(int, pool_size, 8,
          "PostgreSQL connections, and worker threads serving requests.");
ABSL_FLAG(int, statement_timeout_ms, 5000,
          "statement_timeout of every database session; 0 disables it.");
ABSL_FLAG(int, append_lanes, 1,
          "Group commit: concurrent transaction streams for new messages "
          "(chats are spread over them); 0 appends each message in its own "
          "transaction.");
ABSL_FLAG(int, append_max_batch, 256,
          "Group commit: most messages one transaction appends.");
ABSL_FLAG(bool, migrate, true, "Apply pending schema migrations at start.");
ABSL_FLAG(int, blob_gc_interval_s, 300,
          "How often blobs that no file references any more are collected "
          "(0 disables).");
ABSL_FLAG(int64_t, max_file_bytes, int64_t{104857600},
          "Largest file accepted by UploadFile, in bytes (also the limit of "
          "an upload whose request names none).");

namespace {

// Waits up to `wait` for the database, e.g. while it starts next to us.
absl::Status WaitForDatabase(parley::PgPool& pool, bool migrate,
                             std::chrono::seconds wait) {
  const auto end = std::chrono::steady_clock::now() + wait;
  for (;;) {
    absl::Status s;
    if (migrate) {
      absl::StatusOr<int> applied =
          parley::ApplyMigrations(pool, parley::storage::StorageMigrations());
      s = applied.status();
      if (s.ok()) spdlog::info("schema migrations applied: {}", *applied);
    } else {
      s = pool.Transact([](pqxx::work& tx) {
        tx.exec("SELECT 1");
        return absl::OkStatus();
      });
    }
    if (s.ok() || s.code() != absl::StatusCode::kUnavailable ||
        std::chrono::steady_clock::now() >= end) {
      return s;
    }
    spdlog::warn("database not ready ({}); retrying", s.ToString());
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
}

}  // namespace

int main(int argc, char** argv) {
  parley::InitProcess(argc, argv,
                      "users, chats and messages in "
                      "PostgreSQL, served over gRPC");
  const parley::TlsCredentials internal_tls = parley::InternalTlsFromFlags();
  const int pool_size = absl::GetFlag(FLAGS_pool_size);
  if (pool_size < 1) {
    spdlog::error("--pool_size must be at least 1");
    return 2;
  }

  parley::PgPoolOptions pg_options;
  pg_options.url = absl::GetFlag(FLAGS_postgres_url);
  pg_options.size = pool_size;
  pg_options.statement_timeout_ms = absl::GetFlag(FLAGS_statement_timeout_ms);
  parley::PgPool pg_pool(pg_options);
  if (absl::Status s = WaitForDatabase(pg_pool, absl::GetFlag(FLAGS_migrate),
                                       std::chrono::seconds(30));
      !s.ok()) {
    spdlog::error("database not usable: {}", s.ToString());
    return 1;
  }

  const int64_t max_file_bytes = absl::GetFlag(FLAGS_max_file_bytes);
  if (max_file_bytes < 1) {
    spdlog::error("--max_file_bytes must be at least 1");
    return 2;
  }

  parley::storage::StorageRepository repo(&pg_pool);
  // Uploads hold their own connections (opened from the same URL) for the
  // whole stream, outside the pool.
  parley::storage::PgBlobStoreOptions blob_options;
  blob_options.url = pg_options.url;
  blob_options.max_file_bytes = max_file_bytes;
  parley::storage::PgBlobStore blobs(&pg_pool, blob_options);
  // Declared before the workers, so that it outlives the lane drains they
  // may still be running at shutdown.
  std::unique_ptr<parley::storage::AppendBatcher> batcher;
  parley::ThreadPool workers("storage", pool_size,
                             static_cast<size_t>(pool_size) * 64);
  parley::storage::StorageServiceImpl service(&repo, &workers, &blobs,
                                              max_file_bytes);
  const int append_lanes = absl::GetFlag(FLAGS_append_lanes);
  const int append_max_batch = absl::GetFlag(FLAGS_append_max_batch);
  if (append_lanes < 0 || append_lanes >= pool_size || append_max_batch < 1) {
    spdlog::error(
        "--append_lanes must be 0 to --pool_size - 1 (each busy lane holds a "
        "connection), --append_max_batch at least 1");
    return 2;
  }
  if (append_lanes > 0) {
    batcher = std::make_unique<parley::storage::AppendBatcher>(
        &repo, &workers,
        parley::storage::AppendBatcherOptions{
            .lanes = append_lanes,
            .max_batch = static_cast<size_t>(append_max_batch)});
    service.set_append_batcher(batcher.get());
  }

  parley::ServerOptions server_options;
  server_options.listen = absl::GetFlag(FLAGS_listen);
  server_options.port_file = absl::GetFlag(FLAGS_port_file);
  server_options.tls = internal_tls;
  absl::StatusOr<parley::RunningServer> server =
      parley::StartServer(server_options, {&service});
  if (!server.ok()) {
    spdlog::error("cannot start server: {}", server.status().ToString());
    return 1;
  }
  spdlog::info("parley-storage listening on port {} ({}{})", server->port,
               server_options.listen,
               internal_tls.enabled() ? ", mutual TLS" : "");

  // Unreferenced blobs are collected in the background.
  const int gc_interval_s = absl::GetFlag(FLAGS_blob_gc_interval_s);
  std::mutex gc_mu;
  std::condition_variable gc_cv;
  bool stopping = false;
  std::thread gc([&] {
    std::unique_lock<std::mutex> lock(gc_mu);
    while (gc_interval_s > 0 &&
           !gc_cv.wait_for(lock, std::chrono::seconds(gc_interval_s),
                           [&] { return stopping; })) {
      lock.unlock();
      absl::StatusOr<int> collected = blobs.CollectGarbage();
      if (!collected.ok()) {
        spdlog::warn("blob collection failed: {}", collected.status().ToString());
      } else if (*collected > 0) {
        spdlog::info("collected {} unreferenced blobs", *collected);
      }
      lock.lock();
    }
  });

  const int sig = parley::WaitForShutdownSignal();
  spdlog::info("signal {}: shutting down", sig);
  {
    std::lock_guard<std::mutex> lock(gc_mu);
    stopping = true;
  }
  gc_cv.notify_all();
  gc.join();
  parley::ShutdownGracefully(server->server.get(), std::chrono::seconds(5));
  server->server->Wait();
  return 0;
}
