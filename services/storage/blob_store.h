// Storage of uploaded files, behind an interface that an S3-compatible
// object store could later implement. Content is streamed in and read back
// in ranges, so no caller or implementation ever holds a whole file.
//
//   UploadMetadata meta{.uploader_user_id = 7, .chat_id = 3, .name = "a.png",
//                       .content_type = "image/png", .size_bytes = n,
//                       .sha256_hex = hex};
//   auto writer = store.BeginUpload(meta);
//   if (!writer.ok()) return writer.status();
//   while (...) {
//     absl::Status s = (*writer)->Append(piece);  // <= kMaxAppendBytes
//     if (!s.ok()) return s;                      // the upload is gone
//   }
//   absl::StatusOr<FileRecord> file = (*writer)->Finish();
//
//   std::string out;
//   absl::Status s = store.ReadRange(file->file_id, offset, 1 << 20, &out);
//
// Identical content (same SHA-256) is stored once and shared by reference
// count; DeleteFile drops a reference and CollectGarbage frees blobs nobody
// references. Every call blocks; callers on gRPC reactor threads must hand it
// to a ThreadPool. Error messages name the offending field and never quote
// user text.
#ifndef PARLEY_SERVICES_STORAGE_BLOB_STORE_H_
#define PARLEY_SERVICES_STORAGE_BLOB_STORE_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace parley::storage {

// Largest piece one BlobWriter::Append accepts.
inline constexpr int64_t kMaxAppendBytes = int64_t{1} << 20;
// Largest range one ReadRange returns.
inline constexpr int64_t kMaxReadBytes = int64_t{4} << 20;
// Limits of UploadMetadata text fields, in bytes.
inline constexpr size_t kMaxFileNameBytes = 255;
inline constexpr size_t kMaxContentTypeBytes = 255;

struct UploadMetadata {
  int64_t uploader_user_id = 0;
  int64_t chat_id = 0;
  std::string name;          // 1..255 bytes of UTF-8, no control characters
  std::string content_type;  // 0..255 bytes of UTF-8, no control characters
  int64_t size_bytes = 0;    // the exact length of the content
  std::string sha256_hex;    // SHA-256 of the content, 64 hex digits
};

struct FileRecord {
  int64_t file_id = 0;
  int64_t uploader_user_id = 0;
  int64_t chat_id = 0;
  std::string name;
  std::string content_type;
  int64_t size_bytes = 0;
  std::string sha256_hex;  // lowercase
  int64_t blob_id = 0;     // shared by files with identical content
  absl::Time create_time;
};

// One upload in progress. Not thread-safe: one stream per writer. Any
// failing call ends the upload and leaves nothing stored; later calls
// answer FAILED_PRECONDITION. Destroying a writer that was neither finished
// nor aborted aborts it.
class BlobWriter {
 public:
  virtual ~BlobWriter() = default;

  // Adds the next piece of content (at most kMaxAppendBytes; empty is a
  // no-op). INVALID_ARGUMENT "chunk: ..." for a larger piece and
  // "size_bytes: ..." when it would go past the declared size.
  virtual absl::Status Append(absl::string_view chunk) = 0;
  // Verifies and commits. INVALID_ARGUMENT "size_bytes: ..." when fewer
  // bytes than declared arrived, "sha256: ..." when the content does not
  // hash to the declared value.
  virtual absl::StatusOr<FileRecord> Finish() = 0;
  // Drops everything written so far. Idempotent.
  virtual void Abort() = 0;

  virtual int64_t bytes_written() const = 0;
};

class BlobStore {
 public:
  virtual ~BlobStore() = default;

  // INVALID_ARGUMENT for bad metadata (field-named), NOT_FOUND
  // "uploader_user_id: ..." / "chat_id: ..." for unknown ones.
  virtual absl::StatusOr<std::unique_ptr<BlobWriter>> BeginUpload(
      const UploadMetadata& metadata) = 0;

  // NOT_FOUND "file_id: ..." for an unknown or deleted file.
  virtual absl::StatusOr<FileRecord> GetFile(int64_t file_id) = 0;

  // Replaces *out with bytes [offset, offset + length) of the file, cut
  // short at its end (so offset == size_bytes gives an empty result).
  // INVALID_ARGUMENT "offset: ..." for a negative offset, "length: ..." for
  // a negative length or one above kMaxReadBytes; OUT_OF_RANGE "offset: ..."
  // for an offset past the end; NOT_FOUND "file_id: ...".
  virtual absl::Status ReadRange(int64_t file_id, int64_t offset,
                                 int64_t length, std::string* out) = 0;

  // Removes the file and drops its blob reference (the content stays until
  // CollectGarbage). NOT_FOUND "file_id: ..." when there is no such file.
  virtual absl::Status DeleteFile(int64_t file_id) = 0;

  // Deletes every blob (and its content) that no file references; returns
  // how many.
  virtual absl::StatusOr<int> CollectGarbage() = 0;
};

}  // namespace parley::storage

#endif  // PARLEY_SERVICES_STORAGE_BLOB_STORE_H_
