// File sharing through the gateway: streamed upload and download.
#include <sodium.h>

#include <cstring>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/e2e/test_client.h"
#include "tests/support/cluster.h"

namespace parley::e2e {
namespace {

using ::testing::StartsWith;
using Stub = v1::ChatService::Stub;

std::string RandomBytes(size_t n) {
  std::mt19937 rng(static_cast<uint32_t>(n));
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

// The first frame of an upload: what the file is.
v1::UploadFileRequest Metadata(const std::string& chat_id,
                               const std::string& name, int64_t size,
                               const std::string& sha256) {
  v1::UploadFileRequest req;
  auto* md = req.mutable_metadata();
  md->set_chat_id(chat_id);
  md->set_name(name);
  md->set_content_type("application/octet-stream");
  md->set_size_bytes(size);
  md->set_sha256(sha256);
  return req;
}

class FilesTest : public testing::SharedClusterTest {
 protected:
  // gateway1 ends transfers after 4 s (the timeout tests); the other
  // tests' transfers through it are small.
  static void SetUpTestSuite() {
    StartCluster(
        {.gateways = 2,
         .extra_flags = {{"gateway1", {"--file_transfer_timeout_ms=4000"}}}});
  }
  void SetUp() override {
    ASSERT_NE(cluster_, nullptr);
    api_ = std::make_unique<Api>(cluster_->gateway_address(0));
    api1_ = std::make_unique<Api>(cluster_->gateway_address(1));
  }

  // Uploads `content` in 1 MiB chunks, declaring `size` and `sha`.
  grpc::Status Upload(Api* api, const TestUser& u, const std::string& chat_id,
                      const std::string& content, v1::File* out,
                      int64_t size = -1, std::string sha = "",
                      bool metadata_first = true) {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + u.token);
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    v1::File file;
    auto writer = api->chat()->UploadFile(&ctx, &file);
    if (metadata_first) {
      writer->Write(
          Metadata(chat_id, "notes.bin",
                   size >= 0 ? size : static_cast<int64_t>(content.size()),
                   sha.empty() ? Sha256Hex(content) : sha));
    }
    for (size_t off = 0; off < content.size(); off += 1 << 20) {
      v1::UploadFileRequest chunk;
      chunk.set_chunk(content.substr(off, 1 << 20));
      if (!writer->Write(chunk)) break;
    }
    writer->WritesDone();
    grpc::Status s = writer->Finish();
    if (out) *out = file;
    return s;
  }

  grpc::Status Download(Api* api, const TestUser& u, const std::string& file_id,
                        int64_t offset, v1::File* meta, std::string* content) {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + u.token);
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    v1::DownloadFileRequest req;
    req.set_file_id(file_id);
    req.set_offset(offset);
    auto reader = api->chat()->DownloadFile(&ctx, req);
    v1::DownloadFileResponse frame;
    content->clear();
    bool first = true;
    while (reader->Read(&frame)) {
      if (first) {
        EXPECT_TRUE(frame.has_metadata());
        if (meta) *meta = frame.metadata();
        first = false;
        continue;
      }
      EXPECT_TRUE(frame.has_chunk());
      EXPECT_LE(frame.chunk().size(), size_t{1} << 20);
      *content += frame.chunk();
    }
    return reader->Finish();
  }

  std::unique_ptr<Api> api_, api1_;
};


TEST_F(FilesTest, ShareUploadAndDownloadAcrossGateways) {
  TestUser a = api_->NewUser("a"), b = api_->NewUser("b"),
           outsider = api_->NewUser("x");
  v1::Chat d = api_->Direct(a, b);
  const std::string content = RandomBytes((5 << 19) + 7);  // 2.5 MiB + 7
  v1::File file;
  grpc::Status s = Upload(api_.get(), a, d.chat_id(), content, &file);
  ASSERT_TRUE(s.ok()) << s.error_code() << " " << s.error_message();
  EXPECT_FALSE(file.file_id().empty());
  EXPECT_EQ(file.size_bytes(), static_cast<int64_t>(content.size()));
  EXPECT_EQ(file.sha256(), Sha256Hex(content));
  EXPECT_EQ(file.name(), "notes.bin");

  // Not shared yet: only the uploader can read it.
  std::string got;
  EXPECT_EQ(Download(api1_.get(), b, file.file_id(), 0, nullptr, &got)
                .error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  ASSERT_TRUE(Download(api_.get(), a, file.file_id(), 0, nullptr, &got).ok());
  EXPECT_EQ(got, content);

  // Shared in a message (no text needed).
  v1::SendMessageRequest send;
  send.set_chat_id(d.chat_id());
  send.set_client_message_id("file-1");
  send.set_file_id(file.file_id());
  v1::Message m;
  s = api_->Call(a.token, &Stub::SendMessage, send, &m);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(m.file().file_id(), file.file_id());
  EXPECT_EQ(m.file().sha256(), file.sha256());

  v1::File meta;
  ASSERT_TRUE(Download(api1_.get(), b, file.file_id(), 0, &meta, &got).ok());
  EXPECT_EQ(meta.size_bytes(), file.size_bytes());
  EXPECT_EQ(got, content);
  // Resume from an offset.
  const int64_t offset = (1 << 20) + 5;
  ASSERT_TRUE(Download(api1_.get(), b, file.file_id(), offset, nullptr, &got).ok());
  EXPECT_EQ(got, content.substr(offset));
  // Strangers never.
  EXPECT_EQ(Download(api_.get(), outsider, file.file_id(), 0, nullptr, &got)
                .error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Download(api_.get(), outsider, "abc", 0, nullptr, &got).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  // An empty file is a file too.
  ASSERT_TRUE(Upload(api_.get(), a, d.chat_id(), "", &file).ok());
  EXPECT_EQ(file.size_bytes(), 0);
}

TEST_F(FilesTest, BadUploadsAreRefused) {
  TestUser a = api_->NewUser("a"), b = api_->NewUser("b"),
           outsider = api_->NewUser("x");
  v1::Chat d = api_->Direct(a, b);
  const std::string content = RandomBytes(3000);
  grpc::Status s = Upload(api_.get(), a, d.chat_id(), content, nullptr, -1,
                          std::string(64, '0'));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), StartsWith("sha256:"));
  s = Upload(api_.get(), a, d.chat_id(), content, nullptr, 2999);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  s = Upload(api_.get(), a, d.chat_id(), content, nullptr, -1, "",
             /*metadata_first=*/false);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), StartsWith("metadata:"));
  s = Upload(api_.get(), a, d.chat_id(), "", nullptr, int64_t{200} << 20);
  EXPECT_TRUE(s.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED ||
              s.error_code() == grpc::StatusCode::INVALID_ARGUMENT)
      << s.error_code();
  s = Upload(api_.get(), outsider, d.chat_id(), content, nullptr);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  grpc::ClientContext ctx;  // no token
  v1::File f;
  auto writer = api_->chat()->UploadFile(&ctx, &f);
  writer->WritesDone();
  EXPECT_EQ(writer->Finish().error_code(), grpc::StatusCode::UNAUTHENTICATED);
}

// Peak resident set (VmHWM) of a process, in KiB.
int64_t PeakRssKb(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stoll(line.substr(6));
  }
  return -1;
}

TEST_F(FilesTest, FiftyMiBPassesThroughInBoundedMemory) {
  TestUser a = api_->NewUser("a"), b = api_->NewUser("b");
  v1::Chat d = api_->Direct(a, b);
  const int64_t kSize = 50LL << 20;
  // Generate, hash and send chunk by chunk: the test never holds the file.
  crypto_hash_sha256_state hash;
  crypto_hash_sha256_init(&hash);
  std::mt19937_64 rng(7);
  auto next_chunk = [&](int64_t n) {
    std::string c(n, '\0');
    for (int64_t i = 0; i + 8 <= n; i += 8) {
      const uint64_t v = rng();
      std::memcpy(&c[i], &v, 8);
    }
    return c;
  };
  {
    std::mt19937_64 pre = rng;
    for (int64_t off = 0; off < kSize; off += 1 << 20) {
      std::string c = next_chunk(1 << 20);
      crypto_hash_sha256_update(
          &hash, reinterpret_cast<const unsigned char*>(c.data()), c.size());
    }
    rng = pre;
  }
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256_final(&hash, digest);
  char hex[65];
  sodium_bin2hex(hex, sizeof hex, digest, sizeof digest);

  // Peaks so far (registration hashes passwords, which takes memory).
  const int64_t gateway_before = PeakRssKb(cluster_->process("gateway0")->pid());
  const int64_t storage_before = PeakRssKb(cluster_->process("storage")->pid());
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", "Bearer " + a.token);
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
  v1::File file;
  auto writer = api_->chat()->UploadFile(&ctx, &file);
  ASSERT_TRUE(writer->Write(Metadata(d.chat_id(), "big.bin", kSize, hex)));
  for (int64_t off = 0; off < kSize; off += 1 << 20) {
    v1::UploadFileRequest chunk;
    chunk.set_chunk(next_chunk(1 << 20));
    ASSERT_TRUE(writer->Write(chunk));
  }
  writer->WritesDone();
  grpc::Status s = writer->Finish();
  ASSERT_TRUE(s.ok()) << s.error_code() << " " << s.error_message();

  // Download and re-hash, again chunk by chunk.
  grpc::ClientContext dctx;
  dctx.AddMetadata("authorization", "Bearer " + a.token);
  dctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
  v1::DownloadFileRequest dreq;
  dreq.set_file_id(file.file_id());
  auto reader = api_->chat()->DownloadFile(&dctx, dreq);
  v1::DownloadFileResponse frame;
  crypto_hash_sha256_init(&hash);
  int64_t received = 0;
  while (reader->Read(&frame)) {
    if (!frame.has_chunk()) continue;
    received += frame.chunk().size();
    crypto_hash_sha256_update(
        &hash, reinterpret_cast<const unsigned char*>(frame.chunk().data()),
        frame.chunk().size());
  }
  ASSERT_TRUE(reader->Finish().ok());
  EXPECT_EQ(received, kSize);
  crypto_hash_sha256_final(&hash, digest);
  char got_hex[65];
  sodium_bin2hex(got_hex, sizeof got_hex, digest, sizeof digest);
  EXPECT_STREQ(got_hex, hex);

  // Neither the gateway nor storage ever held more than a few chunks.
  for (auto [name, before] :
       {std::pair<const char*, int64_t>{"gateway0", gateway_before},
        std::pair<const char*, int64_t>{"storage", storage_before}}) {
    const int64_t peak_kb = PeakRssKb(cluster_->process(name)->pid());
    std::printf("[ rss      ] %s peak %lld KiB before, %lld KiB after a 50 MiB "
                "round trip\n",
                name, static_cast<long long>(before),
                static_cast<long long>(peak_kb));
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
    EXPECT_GT(before, 0);
    // The file is 50 MiB. Growth is a few chunks in flight plus HTTP/2
    // stream buffers and malloc slack (8-25 MiB measured, independent of
    // the file size: 100 MiB gives the same).
    EXPECT_LT(peak_kb - before, 30 * 1024) << name;
#endif
  }
}

TEST_F(FilesTest, StalledUploadEndsAtTheTransferTimeout) {
  TestUser a = api1_->NewUser("a"), b = api1_->NewUser("b");
  v1::Chat d = api1_->Direct(a, b);
  const std::string content = RandomBytes(2 << 20);
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", "Bearer " + a.token);
  // Far beyond gateway1's 4 s: only the gateway's limit ends the call in
  // time.
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  v1::File file;
  auto writer = api1_->chat()->UploadFile(&ctx, &file);
  ASSERT_TRUE(writer->Write(Metadata(d.chat_id(), "stalled.bin",
                                     static_cast<int64_t>(content.size()),
                                     Sha256Hex(content))));
  v1::UploadFileRequest chunk;
  chunk.set_chunk(content.substr(0, 1 << 20));
  ASSERT_TRUE(writer->Write(chunk));
  // The second half never comes, and neither does WritesDone.
  const auto start = std::chrono::steady_clock::now();
  const grpc::Status s = writer->Finish();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(30));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED)
      << s.error_message();
  EXPECT_THAT(s.error_message(), StartsWith("the transfer took longer than"));
  // The gateway goes on serving transfers.
  v1::File after;
  EXPECT_TRUE(Upload(api1_.get(), a, d.chat_id(), "after", &after).ok());
}

TEST_F(FilesTest, DownloadToAClientThatStopsReadingEndsAtTheTransferTimeout) {
  TestUser a = api_->NewUser("a"), b = api_->NewUser("b");  // a downloads
  v1::Chat d = api_->Direct(a, b);
  // Larger than what HTTP/2 flow control lets through unread; uploaded
  // through gateway0, which has no short limit.
  const std::string content = RandomBytes(48 << 20);
  v1::File file;
  const grpc::Status up = Upload(api_.get(), a, d.chat_id(), content, &file);
  ASSERT_TRUE(up.ok()) << up.error_code() << " " << up.error_message();

  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", "Bearer " + a.token);  // not shared yet
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  v1::DownloadFileRequest req;
  req.set_file_id(file.file_id());
  auto reader = api1_->chat()->DownloadFile(&ctx, req);
  v1::DownloadFileResponse frame;
  ASSERT_TRUE(reader->Read(&frame));  // the metadata
  // Then nothing is read past gateway1's 4 s: not reading is the point,
  // so there is no event to wait for.
  const auto start = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(std::chrono::seconds(6));
  // Draining now gets what was buffered, then the end: well before the
  // client's own deadline, and short of the whole file.
  int64_t received = 0;
  while (reader->Read(&frame)) received += frame.chunk().size();
  const grpc::Status s = reader->Finish();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(30));
  EXPECT_FALSE(s.ok());
  EXPECT_LT(received, static_cast<int64_t>(content.size()));
}

}  // namespace
}  // namespace parley::e2e
