// BlobStore on PostgreSQL (tables of migrations/0004_files.sql).
//
//   parley::storage::PgBlobStoreOptions opts;
//   opts.url = url;  // the same URL the pool uses
//   parley::storage::PgBlobStore store(&pool, opts);
//
// Content is stored in blob_chunks rows of exactly kBlobChunkBytes (the last
// one shorter): appended pieces of any size up to kMaxAppendBytes are
// re-chunked through one buffer of kBlobChunkBytes, so a ranged read knows
// which rows to fetch from the offset alone.
//
// Each upload holds its own dedicated connection (opened from opts.url, not
// taken from the pool, which only lends connections for one callback) and one
// open READ COMMITTED transaction from BeginUpload to Finish: chunk rows go in
// as they arrive, under a staging blob row whose sha256 is NULL. Finish
// verifies size and SHA-256, then either gives the staging blob its sha256
// or, when a blob with that sha256 already exists, deletes the staging blob
// (its chunks cascade) and bumps the existing one's ref_count; it inserts
// the files row and commits. An abort, a failed Finish, a lost connection or
// a crash all end in a rollback, so nothing of the upload ever remains. The
// server's idle_in_transaction_session_timeout ends uploads whose client
// went silent.
//
// Everything else (GetFile, ReadRange, DeleteFile, CollectGarbage) runs
// through the PgPool. Thread-safe; writers are not.
#ifndef PARLEY_SERVICES_STORAGE_PG_BLOB_STORE_H_
#define PARLEY_SERVICES_STORAGE_PG_BLOB_STORE_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "services/storage/blob_store.h"

namespace parley {
class PgPool;
}  // namespace parley

namespace parley::storage {

// Size of every stored chunk but a blob's last.
inline constexpr int64_t kBlobChunkBytes = int64_t{1} << 20;

struct PgBlobStoreOptions {
  // libpq URL for the dedicated upload connections (normally the pool's).
  std::string url;
  // Uploads in progress at once (each holds a connection); more is
  // RESOURCE_EXHAUSTED.
  int max_concurrent_uploads = 16;
  // Largest accepted size_bytes.
  int64_t max_file_bytes = int64_t{2} << 30;
  // statement_timeout of upload connections; 0 disables it.
  std::chrono::milliseconds statement_timeout{30000};
  // idle_in_transaction_session_timeout of upload connections: an upload
  // with no call for this long is rolled back by the server. 0 disables it.
  std::chrono::milliseconds idle_timeout{std::chrono::minutes(5)};
  // Blobs deleted per transaction by CollectGarbage.
  int gc_batch = 64;
};

class PgBlobStore : public BlobStore {
 public:
  // `pool` must outlive the store and every writer it returned.
  PgBlobStore(PgPool* pool, PgBlobStoreOptions options);
  ~PgBlobStore() override;

  absl::StatusOr<std::unique_ptr<BlobWriter>> BeginUpload(
      const UploadMetadata& metadata) override;
  absl::StatusOr<FileRecord> GetFile(int64_t file_id) override;
  absl::Status ReadRange(int64_t file_id, int64_t offset, int64_t length,
                         std::string* out) override;
  absl::Status DeleteFile(int64_t file_id) override;
  absl::StatusOr<int> CollectGarbage() override;

  // Uploads currently in progress (for tests and metrics).
  int active_uploads() const { return active_uploads_->load(); }

 private:
  PgPool* const pool_;
  const PgBlobStoreOptions options_;
  // Shared with writers, which may outlive the store.
  std::shared_ptr<std::atomic<int>> active_uploads_;
};

}  // namespace parley::storage

#endif  // PARLEY_SERVICES_STORAGE_PG_BLOB_STORE_H_
