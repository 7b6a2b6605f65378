#include "services/storage/pg_blob_store.h"

#include <sodium.h>

#include <algorithm>
#include <exception>
#include <pqxx/pqxx>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/pg/pg_pool.h"
#include "common/validation.h"

namespace parley::storage {
namespace {

constexpr char kInsertChunkStatement[] = "parley_blob_chunk_insert";

// Columns read by ReadFileRecord, in order.
constexpr char kFileColumns[] =
    "file_id, uploader_user_id, chat_id, name, content_type, size_bytes, "
    "sha256, blob_id, (extract(epoch from create_time) * 1000000)::bigint";

FileRecord ReadFileRecord(const pqxx::row& row) {
  FileRecord f;
  f.file_id = row[0].as<int64_t>();
  f.uploader_user_id = row[1].as<int64_t>();
  f.chat_id = row[2].as<int64_t>();
  f.name = row[3].as<std::string>();
  f.content_type = row[4].as<std::string>();
  f.size_bytes = row[5].as<int64_t>();
  const pqxx::binarystring sha(row[6]);
  f.sha256_hex = absl::BytesToHexString(absl::string_view(
      reinterpret_cast<const char*>(sha.data()), sha.size()));
  f.blob_id = row[7].as<int64_t>();
  f.create_time = absl::FromUnixMicros(row[8].as<int64_t>());
  return f;
}

absl::Status RequireId(absl::string_view field, int64_t id) {
  if (id <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": must be a positive id"));
  }
  return absl::OkStatus();
}

absl::Status ValidateText(absl::string_view field, absl::string_view text,
                          size_t max_bytes, bool required) {
  if (required && text.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": required"));
  }
  if (text.size() > max_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": at most ", max_bytes, " bytes"));
  }
  if (!IsValidUtf8(text) || HasControlCharacter(text)) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, ": must be valid UTF-8 without control characters"));
  }
  return absl::OkStatus();
}

// The 32 raw bytes of a 64-hex-digit SHA-256, or INVALID_ARGUMENT.
absl::StatusOr<std::string> ParseSha256Hex(absl::string_view hex) {
  if (hex.size() != 2 * crypto_hash_sha256_BYTES ||
      !std::all_of(hex.begin(), hex.end(), [](char c) {
        return absl::ascii_isxdigit(static_cast<unsigned char>(c));
      })) {
    return absl::InvalidArgumentError("sha256: must be 64 hex digits");
  }
  return absl::HexStringToBytes(hex);
}

pqxx::binarystring Binary(absl::string_view bytes) {
  return pqxx::binarystring(bytes.data(), bytes.size());
}

absl::Status FromException() {
  return ClassifyPgException(std::current_exception()).status;
}

class PgBlobWriter final : public BlobWriter {
 public:
  PgBlobWriter(std::shared_ptr<std::atomic<int>> active, UploadMetadata meta,
               std::string sha256)
      : active_(std::move(active)),
        meta_(std::move(meta)),
        sha256_(std::move(sha256)) {
    crypto_hash_sha256_init(&hash_);
  }
  ~PgBlobWriter() override { Abort(); }

  // Connects and opens the upload transaction with its staging blob.
  absl::Status Open(const PgBlobStoreOptions& options) {
    try {
      conn_ = std::make_unique<pqxx::connection>(options.url);
      conn_->set_variable("client_min_messages", "warning");
      conn_->set_variable("statement_timeout",
                          std::to_string(options.statement_timeout.count()));
      conn_->set_variable("idle_in_transaction_session_timeout",
                          std::to_string(options.idle_timeout.count()));
      conn_->prepare(kInsertChunkStatement,
                     "INSERT INTO blob_chunks (blob_id, chunk_index, data) "
                     "VALUES ($1, $2, $3)");
      tx_ = std::make_unique<pqxx::work>(*conn_);
      const pqxx::row known = tx_->exec_params1(
          "SELECT EXISTS (SELECT 1 FROM users WHERE user_id = $1), "
          "EXISTS (SELECT 1 FROM chats WHERE chat_id = $2)",
          meta_.uploader_user_id, meta_.chat_id);
      if (!known[0].as<bool>()) {
        return Fail(absl::NotFoundError(
            absl::StrCat("uploader_user_id: user ", meta_.uploader_user_id,
                         " not found")));
      }
      if (!known[1].as<bool>()) {
        return Fail(absl::NotFoundError(
            absl::StrCat("chat_id: chat ", meta_.chat_id, " not found")));
      }
      staging_blob_id_ =
          tx_->exec_params1(
                 "INSERT INTO blobs (size_bytes) VALUES ($1) RETURNING blob_id",
                 meta_.size_bytes)[0]
              .as<int64_t>();
      buffer_.reserve(static_cast<size_t>(
          std::min<int64_t>(kBlobChunkBytes, meta_.size_bytes)));
      return absl::OkStatus();
    } catch (...) {
      return Fail(FromException());
    }
  }

  absl::Status Append(absl::string_view chunk) override {
    if (done_) return Ended();
    if (static_cast<int64_t>(chunk.size()) > kMaxAppendBytes) {
      return Fail(absl::InvalidArgumentError(
          absl::StrCat("chunk: at most ", kMaxAppendBytes, " bytes per call")));
    }
    if (static_cast<int64_t>(chunk.size()) > meta_.size_bytes - written_) {
      return Fail(absl::InvalidArgumentError(
          absl::StrCat("size_bytes: content is longer than the declared ",
                       meta_.size_bytes, " bytes")));
    }
    if (chunk.empty()) return absl::OkStatus();
    crypto_hash_sha256_update(
        &hash_, reinterpret_cast<const unsigned char*>(chunk.data()),
        chunk.size());
    written_ += static_cast<int64_t>(chunk.size());
    try {
      if (buffer_.empty() &&
          static_cast<int64_t>(chunk.size()) == kBlobChunkBytes) {
        // Already a whole chunk: no need to go through the buffer.
        InsertChunk(chunk);
        return absl::OkStatus();
      }
      while (!chunk.empty()) {
        const size_t take = std::min(
            chunk.size(), static_cast<size_t>(kBlobChunkBytes) - buffer_.size());
        buffer_.append(chunk.data(), take);
        chunk.remove_prefix(take);
        if (static_cast<int64_t>(buffer_.size()) == kBlobChunkBytes) {
          InsertChunk(buffer_);
          buffer_.clear();
        }
      }
      return absl::OkStatus();
    } catch (...) {
      return Fail(FromException());
    }
  }

  absl::StatusOr<FileRecord> Finish() override {
    if (done_) return Ended();
    if (written_ != meta_.size_bytes) {
      return Fail(absl::InvalidArgumentError(
          absl::StrCat("size_bytes: received ", written_, " bytes, declared ",
                       meta_.size_bytes)));
    }
    unsigned char digest[crypto_hash_sha256_BYTES];
    crypto_hash_sha256_final(&hash_, digest);
    if (sodium_memcmp(digest, sha256_.data(), sizeof digest) != 0) {
      return Fail(absl::InvalidArgumentError(
          "sha256: the content does not match the declared hash"));
    }
    try {
      if (!buffer_.empty()) {
        InsertChunk(buffer_);
        buffer_.clear();
        buffer_.shrink_to_fit();
      }
      const int64_t blob_id = ClaimBlob();
      const pqxx::row row = tx_->exec_params1(
          absl::StrCat("INSERT INTO files (uploader_user_id, chat_id, name, "
                       "content_type, size_bytes, sha256, blob_id) "
                       "VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING ",
                       kFileColumns),
          meta_.uploader_user_id, meta_.chat_id, meta_.name,
          meta_.content_type, meta_.size_bytes, Binary(sha256_), blob_id);
      FileRecord record = ReadFileRecord(row);
      tx_->commit();
      Close();
      return record;
    } catch (...) {
      return Fail(FromException());
    }
  }

  void Abort() override {
    if (done_) return;
    if (tx_) {
      try {
        tx_->abort();
      } catch (...) {
        // The connection is going away anyway: the server rolls back.
      }
    }
    Close();
  }

  int64_t bytes_written() const override { return written_; }

 private:
  void InsertChunk(absl::string_view data) {
    tx_->exec_prepared(kInsertChunkStatement, staging_blob_id_, next_chunk_,
                       Binary(data));
    ++next_chunk_;
  }

  // Returns the blob the file will point at, holding one reference for it:
  // an existing blob with the same content (the staging one and its chunks
  // are dropped) or else the staging blob, now named by its sha256.
  int64_t ClaimBlob() {
    for (int attempt = 0;; ++attempt) {
      const pqxx::result existing = tx_->exec_params(
          "UPDATE blobs SET ref_count = ref_count + 1 WHERE sha256 = $1 "
          "RETURNING blob_id",
          Binary(sha256_));
      if (!existing.empty()) {
        tx_->exec_params("DELETE FROM blobs WHERE blob_id = $1",
                         staging_blob_id_);
        return existing[0][0].as<int64_t>();
      }
      // A concurrent upload of the same content may commit its blob between
      // the UPDATE above and this one: then this one fails on the unique
      // sha256 (after waiting for that commit), the savepoint undoes just
      // that, and the next round finds the committed blob.
      tx_->exec("SAVEPOINT parley_claim_blob");
      try {
        tx_->exec_params(
            "UPDATE blobs SET sha256 = $1, ref_count = 1 WHERE blob_id = $2",
            Binary(sha256_), staging_blob_id_);
        tx_->exec("RELEASE SAVEPOINT parley_claim_blob");
        return staging_blob_id_;
      } catch (const pqxx::unique_violation&) {
        tx_->exec("ROLLBACK TO SAVEPOINT parley_claim_blob");
        if (attempt >= 2) throw;
      }
    }
  }

  static absl::Status Ended() {
    return absl::FailedPreconditionError(
        "upload: already finished or aborted");
  }

  absl::Status Fail(absl::Status status) {
    Abort();
    return status;
  }

  // Releases the transaction and the connection (rolling back whatever is
  // not committed) and the upload slot.
  void Close() {
    if (done_) return;
    done_ = true;
    try {
      tx_.reset();
    } catch (...) {
    }
    conn_.reset();
    buffer_.clear();
    buffer_.shrink_to_fit();
    active_->fetch_sub(1);
  }

  const std::shared_ptr<std::atomic<int>> active_;
  const UploadMetadata meta_;
  const std::string sha256_;  // 32 raw bytes
  crypto_hash_sha256_state hash_;
  std::unique_ptr<pqxx::connection> conn_;
  std::unique_ptr<pqxx::work> tx_;  // destroyed before conn_
  int64_t staging_blob_id_ = 0;
  int next_chunk_ = 0;
  int64_t written_ = 0;
  std::string buffer_;  // the next chunk, < kBlobChunkBytes between calls
  bool done_ = false;
};

}  // namespace

PgBlobStore::PgBlobStore(PgPool* pool, PgBlobStoreOptions options)
    : pool_(pool),
      options_(std::move(options)),
      active_uploads_(std::make_shared<std::atomic<int>>(0)) {}

PgBlobStore::~PgBlobStore() = default;

absl::StatusOr<std::unique_ptr<BlobWriter>> PgBlobStore::BeginUpload(
    const UploadMetadata& metadata) {
  if (absl::Status s = RequireId("uploader_user_id", metadata.uploader_user_id);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = RequireId("chat_id", metadata.chat_id); !s.ok()) {
    return s;
  }
  if (absl::Status s =
          ValidateText("name", metadata.name, kMaxFileNameBytes, true);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = ValidateText("content_type", metadata.content_type,
                                    kMaxContentTypeBytes, false);
      !s.ok()) {
    return s;
  }
  if (metadata.size_bytes < 0 || metadata.size_bytes > options_.max_file_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "size_bytes: must be between 0 and ", options_.max_file_bytes));
  }
  absl::StatusOr<std::string> sha256 = ParseSha256Hex(metadata.sha256_hex);
  if (!sha256.ok()) return sha256.status();

  if (active_uploads_->fetch_add(1) >= options_.max_concurrent_uploads) {
    active_uploads_->fetch_sub(1);
    return absl::ResourceExhaustedError("uploads: too many in progress");
  }
  // From here on the writer owns the upload slot.
  UploadMetadata meta = metadata;
  meta.sha256_hex = absl::AsciiStrToLower(meta.sha256_hex);
  auto writer = std::make_unique<PgBlobWriter>(active_uploads_, std::move(meta),
                                               *std::move(sha256));
  if (absl::Status s = writer->Open(options_); !s.ok()) return s;
  return writer;
}

absl::StatusOr<FileRecord> PgBlobStore::GetFile(int64_t file_id) {
  if (absl::Status s = RequireId("file_id", file_id); !s.ok()) return s;
  FileRecord record;
  absl::Status s = pool_->ReadOnly([&](pqxx::work& tx) -> absl::Status {
    const pqxx::result r = tx.exec_params(
        absl::StrCat("SELECT ", kFileColumns, " FROM files WHERE file_id = $1"),
        file_id);
    if (r.empty()) {
      return absl::NotFoundError(
          absl::StrCat("file_id: file ", file_id, " not found"));
    }
    record = ReadFileRecord(r[0]);
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return record;
}

absl::Status PgBlobStore::ReadRange(int64_t file_id, int64_t offset,
                                    int64_t length, std::string* out) {
  if (absl::Status s = RequireId("file_id", file_id); !s.ok()) return s;
  if (offset < 0) {
    return absl::InvalidArgumentError("offset: must not be negative");
  }
  if (length < 0 || length > kMaxReadBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("length: must be between 0 and ", kMaxReadBytes));
  }
  return pool_->ReadOnly([&](pqxx::work& tx) -> absl::Status {
    out->clear();
    const pqxx::result f = tx.exec_params(
        "SELECT blob_id, size_bytes FROM files WHERE file_id = $1", file_id);
    if (f.empty()) {
      return absl::NotFoundError(
          absl::StrCat("file_id: file ", file_id, " not found"));
    }
    const int64_t blob_id = f[0][0].as<int64_t>();
    const int64_t size = f[0][1].as<int64_t>();
    if (offset > size) {
      return absl::OutOfRangeError(
          absl::StrCat("offset: past the end of the file (", size, " bytes)"));
    }
    const int64_t end = std::min(size, offset + length);
    if (end == offset) return absl::OkStatus();
    out->reserve(static_cast<size_t>(end - offset));
    const int64_t first = offset / kBlobChunkBytes;
    const int64_t last = (end - 1) / kBlobChunkBytes;
    // Each chunk's slice of [offset, end), 1-based for substring(); with
    // EXTERNAL storage the server detoasts only the slices it returns.
    const pqxx::result r = tx.exec_params(
        "SELECT c.chunk_index, "
        "substring(c.data FROM (s.lo + 1)::integer FOR (s.hi - s.lo)::integer) "
        "FROM blob_chunks c, LATERAL (SELECT "
        "greatest($2::bigint - c.chunk_index::bigint * $4::bigint, 0) AS lo, "
        "least($3::bigint - c.chunk_index::bigint * $4::bigint, $4::bigint) "
        "AS hi) s "
        "WHERE c.blob_id = $1 AND c.chunk_index BETWEEN $5 AND $6 "
        "ORDER BY c.chunk_index",
        blob_id, offset, end, kBlobChunkBytes, first, last);
    int64_t expected = first;
    for (const auto& row : r) {
      if (row[0].as<int64_t>() != expected++) break;
      const pqxx::binarystring piece(row[1]);
      out->append(reinterpret_cast<const char*>(piece.data()), piece.size());
    }
    if (static_cast<int64_t>(out->size()) != end - offset) {
      out->clear();
      return absl::InternalError("file_id: stored content is incomplete");
    }
    return absl::OkStatus();
  });
}

absl::Status PgBlobStore::DeleteFile(int64_t file_id) {
  if (absl::Status s = RequireId("file_id", file_id); !s.ok()) return s;
  return pool_->Transact([&](pqxx::work& tx) -> absl::Status {
    const pqxx::result r = tx.exec_params(
        "DELETE FROM files WHERE file_id = $1 RETURNING blob_id", file_id);
    if (r.empty()) {
      return absl::NotFoundError(
          absl::StrCat("file_id: file ", file_id, " not found"));
    }
    tx.exec_params(
        "UPDATE blobs SET ref_count = ref_count - 1 WHERE blob_id = $1",
        r[0][0].as<int64_t>());
    return absl::OkStatus();
  });
}

absl::StatusOr<int> PgBlobStore::CollectGarbage() {
  const int batch = std::max(1, options_.gc_batch);
  int total = 0;
  for (;;) {
    int deleted = 0;
    // Staging blobs are never visible outside their upload's transaction;
    // a blob whose ref_count a Finish raised meanwhile is re-checked and
    // kept (READ COMMITTED re-evaluates the outer WHERE on the new row).
    absl::Status s = pool_->Transact([&](pqxx::work& tx) -> absl::Status {
      deleted = static_cast<int>(
          tx.exec_params("DELETE FROM blobs WHERE blob_id IN ("
                         "SELECT blob_id FROM blobs WHERE ref_count = 0 "
                         "ORDER BY blob_id LIMIT $1 FOR UPDATE SKIP LOCKED) "
                         "AND ref_count = 0",
                         batch)
              .affected_rows());
      return absl::OkStatus();
    });
    if (!s.ok()) return s;
    total += deleted;
    if (deleted < batch) return total;
  }
}

}  // namespace parley::storage
