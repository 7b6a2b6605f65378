// PgBlobStore against a real PostgreSQL started for this suite.
#include "services/storage/pg_blob_store.h"

#include <sodium.h>

#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/pg/pg_pool.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/storage/migrations.h"
#include "tests/support/test_postgres.h"

namespace parley::storage {
namespace {

using ::testing::HasSubstr;

constexpr int64_t kMiB = int64_t{1} << 20;

std::string Sha256Hex(absl::string_view data) {
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(digest, reinterpret_cast<const unsigned char*>(data.data()),
                     data.size());
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest), sizeof digest));
}

// Deterministic pseudo-random bytes: the same (seed, size) gives the same
// content, written into `out` without reallocating when it is big enough.
class ByteStream {
 public:
  explicit ByteStream(uint64_t seed) : rng_(seed) {}
  void Next(size_t n, std::string* out) {
    out->resize(n);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
      const uint64_t v = rng_();
      std::memcpy(&(*out)[i], &v, 8);
    }
    for (; i < n; ++i) (*out)[i] = static_cast<char>(rng_());
  }

 private:
  std::mt19937_64 rng_;
};

std::string Content(int64_t size, uint64_t seed) {
  std::string s;
  ByteStream(seed).Next(static_cast<size_t>(size), &s);
  return s;
}

// Kilobytes of a field of /proc/self/status ("VmRSS", "VmHWM").
int64_t ProcStatusKb(absl::string_view field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (absl::StartsWith(line, absl::StrCat(field, ":"))) {
      std::string digits;
      for (char c : line) {
        if (c >= '0' && c <= '9') digits.push_back(c);
      }
      int64_t kb = 0;
      if (absl::SimpleAtoi(digits, &kb)) return kb;
    }
  }
  return -1;
}

struct RowCounts {
  int64_t blobs = 0;
  int64_t chunks = 0;
  int64_t files = 0;
  bool operator==(const RowCounts& o) const {
    return blobs == o.blobs && chunks == o.chunks && files == o.files;
  }
};

std::ostream& operator<<(std::ostream& os, const RowCounts& c) {
  return os << "{blobs=" << c.blobs << " chunks=" << c.chunks
            << " files=" << c.files << "}";
}

class PgBlobStoreTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ASSERT_GE(sodium_init(), 0);
    auto pg = ::parley::testing::TestPostgres::Start();
    ASSERT_TRUE(pg.ok()) << pg.status();
    pg_ = pg->release();
    PgPoolOptions options;
    options.url = pg_->url();
    options.size = 4;
    pool_ = new PgPool(options);
    auto applied = ApplyMigrations(*pool_, StorageMigrations());
    ASSERT_TRUE(applied.ok()) << applied.status();
    absl::Status s = pool_->Transact([](pqxx::work& tx) {
      user_id_ = tx.exec1("INSERT INTO users (username, display_name, "
                          "password_hash) VALUES ('uploader', 'U', 'x') "
                          "RETURNING user_id")[0]
                     .as<int64_t>();
      chat_id_ = tx.exec1("INSERT INTO chats (type, title) VALUES (2, 'g') "
                          "RETURNING chat_id")[0]
                     .as<int64_t>();
      return absl::OkStatus();
    });
    ASSERT_TRUE(s.ok()) << s;
    PgBlobStoreOptions store_options;
    store_options.url = pg_->url();
    store_ = new PgBlobStore(pool_, store_options);
  }
  static void TearDownTestSuite() {
    delete store_;
    store_ = nullptr;
    delete pool_;
    pool_ = nullptr;
    delete pg_;
    pg_ = nullptr;
  }
  void SetUp() override { ASSERT_NE(store_, nullptr); }
  void TearDown() override { EXPECT_EQ(store_->active_uploads(), 0); }

  PgBlobStore& store() { return *store_; }

  UploadMetadata Meta(int64_t size, const std::string& sha_hex) {
    UploadMetadata m;
    m.uploader_user_id = user_id_;
    m.chat_id = chat_id_;
    m.name = "file.bin";
    m.content_type = "application/octet-stream";
    m.size_bytes = size;
    m.sha256_hex = sha_hex;
    return m;
  }

  // Uploads `content` in pieces of `piece` bytes.
  absl::StatusOr<FileRecord> Upload(const std::string& content,
                                    int64_t piece = kMiB) {
    auto writer = store().BeginUpload(
        Meta(static_cast<int64_t>(content.size()), Sha256Hex(content)));
    if (!writer.ok()) return writer.status();
    for (size_t at = 0; at < content.size(); at += piece) {
      absl::Status s = (*writer)->Append(
          absl::string_view(content).substr(at, static_cast<size_t>(piece)));
      if (!s.ok()) return s;
    }
    return (*writer)->Finish();
  }

  std::string ReadAll(int64_t file_id, int64_t size) {
    std::string all, piece;
    for (int64_t at = 0; at < size; at += kMiB) {
      absl::Status s = store().ReadRange(file_id, at, kMiB, &piece);
      EXPECT_TRUE(s.ok()) << s;
      all += piece;
    }
    return all;
  }

  RowCounts Counts() {
    RowCounts c;
    absl::Status s = pool_->ReadOnly([&](pqxx::work& tx) {
      const pqxx::row r = tx.exec1(
          "SELECT (SELECT count(*) FROM blobs), "
          "(SELECT count(*) FROM blob_chunks), (SELECT count(*) FROM files)");
      c = {r[0].as<int64_t>(), r[1].as<int64_t>(), r[2].as<int64_t>()};
      return absl::OkStatus();
    });
    EXPECT_TRUE(s.ok()) << s;
    return c;
  }

  // ref_count and chunk rows of a blob; -1 ref_count when it is gone.
  std::pair<int64_t, int64_t> BlobState(int64_t blob_id) {
    std::pair<int64_t, int64_t> out{-1, 0};
    absl::Status s = pool_->ReadOnly([&](pqxx::work& tx) {
      const pqxx::row r = tx.exec_params1(
          "SELECT (SELECT ref_count FROM blobs WHERE blob_id = $1), "
          "(SELECT count(*) FROM blob_chunks WHERE blob_id = $1)",
          blob_id);
      out = {r[0].is_null() ? -1 : r[0].as<int64_t>(), r[1].as<int64_t>()};
      return absl::OkStatus();
    });
    EXPECT_TRUE(s.ok()) << s;
    return out;
  }

  static ::parley::testing::TestPostgres* pg_;
  static PgPool* pool_;
  static PgBlobStore* store_;
  static int64_t user_id_;
  static int64_t chat_id_;
};

::parley::testing::TestPostgres* PgBlobStoreTest::pg_ = nullptr;
PgPool* PgBlobStoreTest::pool_ = nullptr;
PgBlobStore* PgBlobStoreTest::store_ = nullptr;
int64_t PgBlobStoreTest::user_id_ = 0;
int64_t PgBlobStoreTest::chat_id_ = 0;

TEST_F(PgBlobStoreTest, RoundTripsAtChunkBoundaries) {
  uint64_t seed = 100;
  for (int64_t size : {int64_t{0}, int64_t{1}, kMiB - 1, kMiB, kMiB + 1,
                       3 * kMiB + 17}) {
    for (int64_t piece : {kMiB, int64_t{64 * 1024 + 3}}) {
      SCOPED_TRACE(absl::StrCat("size ", size, " piece ", piece));
      const std::string content = Content(size, ++seed);
      auto file = Upload(content, piece);
      ASSERT_TRUE(file.ok()) << file.status();
      EXPECT_GT(file->file_id, 0);
      EXPECT_EQ(file->size_bytes, size);
      EXPECT_EQ(file->sha256_hex, Sha256Hex(content));
      // (The empty file is shared by every 0-byte upload.)
      EXPECT_EQ(BlobState(file->blob_id).second, (size + kMiB - 1) / kMiB);

      auto got = store().GetFile(file->file_id);
      ASSERT_TRUE(got.ok()) << got.status();
      EXPECT_EQ(got->name, "file.bin");
      EXPECT_EQ(got->content_type, "application/octet-stream");
      EXPECT_EQ(got->uploader_user_id, user_id_);
      EXPECT_EQ(got->chat_id, chat_id_);
      EXPECT_EQ(got->blob_id, file->blob_id);
      EXPECT_EQ(got->sha256_hex, file->sha256_hex);
      EXPECT_EQ(got->create_time, file->create_time);

      EXPECT_EQ(ReadAll(file->file_id, size), content);
      // Resuming reads at assorted offsets, across chunk boundaries.
      for (int64_t offset : {int64_t{0}, int64_t{1}, kMiB - 2, kMiB - 1, kMiB,
                             kMiB + 1, size - 1, size}) {
        if (offset < 0 || offset > size) continue;
        for (int64_t length : {int64_t{0}, int64_t{1}, int64_t{10}, kMiB,
                               kMiB + 2, kMaxReadBytes}) {
          std::string out = "stale";
          absl::Status s = store().ReadRange(file->file_id, offset, length, &out);
          ASSERT_TRUE(s.ok()) << s << " offset " << offset;
          EXPECT_EQ(out, content.substr(offset, length))
              << "offset " << offset << " length " << length;
        }
      }
      std::string out;
      absl::Status past = store().ReadRange(file->file_id, size + 1, 1, &out);
      EXPECT_EQ(past.code(), absl::StatusCode::kOutOfRange);
      EXPECT_THAT(past.message(), HasSubstr("offset: "));
    }
  }
}

TEST_F(PgBlobStoreTest, ReadRangeRejectsBadArguments) {
  auto file = Upload(Content(10, 7));
  ASSERT_TRUE(file.ok()) << file.status();
  std::string out;
  absl::Status s = store().ReadRange(file->file_id, -1, 1, &out);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("offset: "));
  s = store().ReadRange(file->file_id, 0, -1, &out);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("length: "));
  s = store().ReadRange(file->file_id, 0, kMaxReadBytes + 1, &out);
  EXPECT_THAT(s.message(), HasSubstr("length: "));
  s = store().ReadRange(999999, 0, 1, &out);
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(s.message(), HasSubstr("file_id: "));
  EXPECT_EQ(store().GetFile(999999).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(store().GetFile(0).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(PgBlobStoreTest, BeginUploadValidates) {
  const std::string sha = Sha256Hex("x");
  UploadMetadata m = Meta(1, "abc");
  auto w = store().BeginUpload(m);
  EXPECT_EQ(w.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(w.status().message(), HasSubstr("sha256: "));
  m = Meta(-1, sha);
  EXPECT_THAT(store().BeginUpload(m).status().message(),
              HasSubstr("size_bytes: "));
  m = Meta(1, sha);
  m.name = "";
  EXPECT_THAT(store().BeginUpload(m).status().message(), HasSubstr("name: "));
  m = Meta(1, sha);
  m.uploader_user_id = 987654;
  w = store().BeginUpload(m);
  EXPECT_EQ(w.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(w.status().message(), HasSubstr("uploader_user_id: "));
  m = Meta(1, sha);
  m.chat_id = 987654;
  w = store().BeginUpload(m);
  EXPECT_EQ(w.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(w.status().message(), HasSubstr("chat_id: "));

  // Upper-case hex is accepted and reported in lower case.
  std::string upper = sha;
  for (char& c : upper) c = static_cast<char>(std::toupper(c));
  w = store().BeginUpload(Meta(1, upper));
  ASSERT_TRUE(w.ok()) << w.status();
  ASSERT_TRUE((*w)->Append("x").ok());
  auto file = (*w)->Finish();
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ(file->sha256_hex, sha);
}

TEST_F(PgBlobStoreTest, OversizedAppendEndsTheUpload) {
  const RowCounts before = Counts();
  const std::string content = Content(2 * kMiB, 11);
  auto w = store().BeginUpload(Meta(2 * kMiB, Sha256Hex(content)));
  ASSERT_TRUE(w.ok()) << w.status();
  ASSERT_TRUE((*w)->Append(absl::string_view(content).substr(0, kMiB)).ok());
  absl::Status s = (*w)->Append(content.substr(0, kMiB + 1));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("chunk: "));
  EXPECT_EQ((*w)->Append("x").code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ((*w)->Finish().status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Counts(), before);
}

TEST_F(PgBlobStoreTest, SizeMismatchLeavesNoRows) {
  const RowCounts before = Counts();
  const std::string content = Content(kMiB + 5, 21);
  {
    // Too short: Finish refuses.
    auto w = store().BeginUpload(Meta(kMiB + 6, Sha256Hex(content)));
    ASSERT_TRUE(w.ok()) << w.status();
    ASSERT_TRUE((*w)->Append(absl::string_view(content).substr(0, kMiB)).ok());
    ASSERT_TRUE((*w)->Append(absl::string_view(content).substr(kMiB)).ok());
    auto file = (*w)->Finish();
    EXPECT_EQ(file.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(file.status().message(), HasSubstr("size_bytes: "));
    EXPECT_EQ((*w)->Finish().status().code(),
              absl::StatusCode::kFailedPrecondition);
  }
  EXPECT_EQ(Counts(), before);
  {
    // Too long: Append refuses going past the declared size.
    auto w = store().BeginUpload(Meta(kMiB + 4, Sha256Hex(content)));
    ASSERT_TRUE(w.ok()) << w.status();
    ASSERT_TRUE((*w)->Append(absl::string_view(content).substr(0, kMiB)).ok());
    absl::Status s = (*w)->Append(absl::string_view(content).substr(kMiB));
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(s.message(), HasSubstr("size_bytes: "));
  }
  EXPECT_EQ(Counts(), before);
}

TEST_F(PgBlobStoreTest, Sha256MismatchLeavesNoRows) {
  const RowCounts before = Counts();
  const std::string content = Content(2 * kMiB + 9, 31);
  std::string wrong = content;
  wrong[kMiB + 3] ^= 1;
  auto w = store().BeginUpload(
      Meta(static_cast<int64_t>(content.size()), Sha256Hex(wrong)));
  ASSERT_TRUE(w.ok()) << w.status();
  for (size_t at = 0; at < content.size(); at += kMiB) {
    ASSERT_TRUE((*w)->Append(absl::string_view(content).substr(at, kMiB)).ok());
  }
  auto file = (*w)->Finish();
  EXPECT_EQ(file.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(file.status().message(), HasSubstr("sha256: "));
  EXPECT_EQ(Counts(), before);
}

TEST_F(PgBlobStoreTest, AbortAndDestructorLeaveNoRows) {
  const RowCounts before = Counts();
  const std::string content = Content(3 * kMiB, 41);
  {
    auto w = store().BeginUpload(Meta(3 * kMiB, Sha256Hex(content)));
    ASSERT_TRUE(w.ok()) << w.status();
    ASSERT_TRUE((*w)->Append(absl::string_view(content).substr(0, kMiB)).ok());
    ASSERT_TRUE(
        (*w)->Append(absl::string_view(content).substr(kMiB, kMiB / 2)).ok());
    EXPECT_EQ(store().active_uploads(), 1);
    (*w)->Abort();
    (*w)->Abort();  // idempotent
    EXPECT_EQ(store().active_uploads(), 0);
    EXPECT_EQ((*w)->Append("x").code(), absl::StatusCode::kFailedPrecondition);
  }
  EXPECT_EQ(Counts(), before);
  {
    auto w = store().BeginUpload(Meta(3 * kMiB, Sha256Hex(content)));
    ASSERT_TRUE(w.ok()) << w.status();
    ASSERT_TRUE((*w)->Append(absl::string_view(content).substr(0, kMiB)).ok());
    ASSERT_TRUE(
        (*w)->Append(absl::string_view(content).substr(kMiB, kMiB)).ok());
    // Dropped without Finish or Abort.
  }
  EXPECT_EQ(store().active_uploads(), 0);
  EXPECT_EQ(Counts(), before);
}

TEST_F(PgBlobStoreTest, IdenticalContentIsStoredOnce) {
  const std::string content = Content(2 * kMiB + 100, 51);
  const RowCounts before = Counts();
  auto a = Upload(content, kMiB);
  ASSERT_TRUE(a.ok()) << a.status();
  // Different piece sizes give the same chunks.
  auto b = Upload(content, 300 * 1024 + 1);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_NE(a->file_id, b->file_id);
  EXPECT_EQ(a->blob_id, b->blob_id);
  EXPECT_EQ(BlobState(a->blob_id), std::make_pair(int64_t{2}, int64_t{3}));
  const RowCounts after = Counts();
  EXPECT_EQ(after.blobs, before.blobs + 1);
  EXPECT_EQ(after.chunks, before.chunks + 3);
  EXPECT_EQ(after.files, before.files + 2);
  EXPECT_EQ(ReadAll(b->file_id, b->size_bytes), content);
}

TEST_F(PgBlobStoreTest, ConcurrentIdenticalUploadsShareOneBlob) {
  const std::string content = Content(kMiB + 1, 61);
  const RowCounts before = Counts();
  constexpr int kUploads = 4;
  std::vector<std::unique_ptr<BlobWriter>> writers;
  for (int i = 0; i < kUploads; ++i) {
    auto w = store().BeginUpload(
        Meta(static_cast<int64_t>(content.size()), Sha256Hex(content)));
    ASSERT_TRUE(w.ok()) << w.status();
    ASSERT_TRUE((*w)->Append(absl::string_view(content).substr(0, kMiB)).ok());
    ASSERT_TRUE((*w)->Append(absl::string_view(content).substr(kMiB)).ok());
    writers.push_back(*std::move(w));
  }
  std::vector<absl::StatusOr<FileRecord>> results(kUploads,
                                                  absl::UnknownError(""));
  std::vector<std::thread> threads;
  for (int i = 0; i < kUploads; ++i) {
    threads.emplace_back([&, i] { results[i] = writers[i]->Finish(); });
  }
  for (auto& t : threads) t.join();
  for (const auto& r : results) {
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->blob_id, results[0]->blob_id);
  }
  EXPECT_EQ(BlobState(results[0]->blob_id),
            std::make_pair(int64_t{kUploads}, int64_t{2}));
  const RowCounts after = Counts();
  EXPECT_EQ(after.blobs, before.blobs + 1);
  EXPECT_EQ(after.chunks, before.chunks + 2);
  EXPECT_EQ(after.files, before.files + kUploads);
}

TEST_F(PgBlobStoreTest, GarbageCollectionWaitsForTheLastReference) {
  const std::string content = Content(kMiB + 3, 71);
  auto a = Upload(content);
  ASSERT_TRUE(a.ok()) << a.status();
  auto b = Upload(content);
  ASSERT_TRUE(b.ok()) << b.status();
  ASSERT_EQ(a->blob_id, b->blob_id);
  const int64_t blob = a->blob_id;

  ASSERT_TRUE(store().DeleteFile(a->file_id).ok());
  EXPECT_EQ(store().DeleteFile(a->file_id).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store().GetFile(a->file_id).status().code(),
            absl::StatusCode::kNotFound);
  auto gc = store().CollectGarbage();
  ASSERT_TRUE(gc.ok()) << gc.status();
  EXPECT_EQ(*gc, 0);
  EXPECT_EQ(BlobState(blob), std::make_pair(int64_t{1}, int64_t{2}));
  EXPECT_EQ(ReadAll(b->file_id, b->size_bytes), content);

  // Unreferenced but not yet collected: a new upload revives it.
  ASSERT_TRUE(store().DeleteFile(b->file_id).ok());
  EXPECT_EQ(BlobState(blob), std::make_pair(int64_t{0}, int64_t{2}));
  auto c = Upload(content);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->blob_id, blob);
  gc = store().CollectGarbage();
  ASSERT_TRUE(gc.ok()) << gc.status();
  EXPECT_EQ(*gc, 0);
  EXPECT_EQ(ReadAll(c->file_id, c->size_bytes), content);

  const RowCounts before = Counts();
  ASSERT_TRUE(store().DeleteFile(c->file_id).ok());
  gc = store().CollectGarbage();
  ASSERT_TRUE(gc.ok()) << gc.status();
  EXPECT_EQ(*gc, 1);
  EXPECT_EQ(BlobState(blob), std::make_pair(int64_t{-1}, int64_t{0}));
  const RowCounts after = Counts();
  EXPECT_EQ(after.blobs, before.blobs - 1);
  EXPECT_EQ(after.chunks, before.chunks - 2);
  EXPECT_EQ(after.files, before.files - 1);
  gc = store().CollectGarbage();
  ASSERT_TRUE(gc.ok()) << gc.status();
  EXPECT_EQ(*gc, 0);
}

TEST_F(PgBlobStoreTest, FiftyMiBStreamsInBoundedMemory) {
  constexpr int64_t kSize = 50 * kMiB;
  constexpr uint64_t kSeed = 81;
  std::string piece;
  piece.reserve(kMiB);
  // Hash the stream first, generating it on the fly.
  std::string sha_hex;
  {
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    ByteStream gen(kSeed);
    for (int64_t at = 0; at < kSize; at += kMiB) {
      gen.Next(kMiB, &piece);
      crypto_hash_sha256_update(
          &st, reinterpret_cast<const unsigned char*>(piece.data()), kMiB);
    }
    unsigned char digest[crypto_hash_sha256_BYTES];
    crypto_hash_sha256_final(&st, digest);
    sha_hex = absl::BytesToHexString(absl::string_view(
        reinterpret_cast<const char*>(digest), sizeof digest));
  }

  // Reset the peak (Linux >= 4.0) so VmHWM measures this test only.
  { std::ofstream("/proc/self/clear_refs") << "5"; }
  const int64_t rss_before_kb = ProcStatusKb("VmRSS");
  ASSERT_GT(rss_before_kb, 0);

  const auto t0 = std::chrono::steady_clock::now();
  auto w = store().BeginUpload(Meta(kSize, sha_hex));
  ASSERT_TRUE(w.ok()) << w.status();
  {
    ByteStream gen(kSeed);
    for (int64_t at = 0; at < kSize; at += kMiB) {
      gen.Next(kMiB, &piece);
      // Odd split: exercises the re-chunking buffer too.
      const absl::string_view p(piece);
      ASSERT_TRUE((*w)->Append(p.substr(0, 12345)).ok());
      ASSERT_TRUE((*w)->Append(p.substr(12345)).ok());
    }
  }
  auto file = (*w)->Finish();
  ASSERT_TRUE(file.ok()) << file.status();
  const auto t1 = std::chrono::steady_clock::now();

  crypto_hash_sha256_state st;
  crypto_hash_sha256_init(&st);
  int64_t read = 0;
  for (int64_t at = 0; at < kSize; at += kMiB) {
    absl::Status s = store().ReadRange(file->file_id, at, kMiB, &piece);
    ASSERT_TRUE(s.ok()) << s;
    crypto_hash_sha256_update(
        &st, reinterpret_cast<const unsigned char*>(piece.data()),
        piece.size());
    read += static_cast<int64_t>(piece.size());
  }
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256_final(&st, digest);
  const auto t2 = std::chrono::steady_clock::now();
  EXPECT_EQ(read, kSize);
  EXPECT_EQ(absl::BytesToHexString(absl::string_view(
                reinterpret_cast<const char*>(digest), sizeof digest)),
            sha_hex);

  const int64_t hwm_after_kb = ProcStatusKb("VmHWM");
  const int64_t growth_kb = hwm_after_kb - rss_before_kb;
  const double up_s = std::chrono::duration<double>(t1 - t0).count();
  const double down_s = std::chrono::duration<double>(t2 - t1).count();
  std::printf(
      "[ perf     ] 50 MiB upload %.1f MB/s (%.2f s), download %.1f MB/s "
      "(%.2f s); RSS before %lld KiB, peak after %lld KiB, growth %lld KiB\n",
      kSize / 1e6 / up_s, up_s, kSize / 1e6 / down_s, down_s,
      static_cast<long long>(rss_before_kb),
      static_cast<long long>(hwm_after_kb), static_cast<long long>(growth_kb));
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  // Sanitizers keep freed memory in quarantine: RSS says nothing there.
#else
  EXPECT_LT(growth_kb, 16 * 1024);
#endif
  EXPECT_EQ(BlobState(file->blob_id), std::make_pair(int64_t{1}, int64_t{50}));
}

}  // namespace
}  // namespace parley::storage
