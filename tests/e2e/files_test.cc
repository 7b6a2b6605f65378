// File sharing through the gateway: streamed upload and download.
#include <sodium.h>

#include <memory>
#include <random>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/e2e/test_client.h"
#include "tests/support/cluster.h"

namespace parley::e2e {
namespace {

using ::testing::StartsWith;
using Stub = v1::ChatService::Stub;

std::string Sha256Hex(const std::string& data) {
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(digest, reinterpret_cast<const unsigned char*>(data.data()),
                     data.size());
  char hex[2 * sizeof digest + 1];
  sodium_bin2hex(hex, sizeof hex, digest, sizeof digest);
  return hex;
}

std::string RandomBytes(size_t n) {
  std::mt19937 rng(static_cast<uint32_t>(n));
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

class FilesTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto c = testing::Cluster::Start({.gateways = 2});
    ASSERT_TRUE(c.ok()) << c.status();
    cluster_ = c->release();
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
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
    v1::UploadFileRequest req;
    auto* md = req.mutable_metadata();
    md->set_chat_id(chat_id);
    md->set_name("notes.bin");
    md->set_content_type("application/octet-stream");
    md->set_size_bytes(size >= 0 ? size : static_cast<int64_t>(content.size()));
    md->set_sha256(sha.empty() ? Sha256Hex(content) : sha);
    if (metadata_first) writer->Write(req);
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

  static testing::Cluster* cluster_;
  std::unique_ptr<Api> api_, api1_;
};

testing::Cluster* FilesTest::cluster_ = nullptr;

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

}  // namespace
}  // namespace parley::e2e
