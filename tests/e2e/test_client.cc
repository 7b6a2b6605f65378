#include "tests/e2e/test_client.h"

#include <sodium.h>

#include <atomic>
#include <random>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace parley::e2e {

std::string UniqueName(const std::string& prefix) {
  static std::atomic<int> counter{0};
  static const uint32_t run = std::random_device{}() % 100000;
  return absl::StrCat(prefix.substr(0, 12), "_", run, "_", counter++);
}

v1::ClientFrame SendFrame(const std::string& chat_id, const std::string& cmid,
                          const std::string& text) {
  v1::ClientFrame f;
  f.mutable_send()->set_chat_id(chat_id);
  f.mutable_send()->set_client_message_id(cmid);
  f.mutable_send()->set_text(text);
  return f;
}

std::string Sha256Hex(const std::string& data) {
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(digest, reinterpret_cast<const unsigned char*>(data.data()),
                     data.size());
  char hex[2 * sizeof digest + 1];
  sodium_bin2hex(hex, sizeof hex, digest, sizeof digest);
  return hex;
}

grpc::Status Api::Upload(const std::string& token, const std::string& chat_id,
                         const std::string& content, v1::File* out) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  if (!token.empty()) ctx.AddMetadata("authorization", "Bearer " + token);
  v1::File file;
  auto writer = chat_->UploadFile(&ctx, &file);
  v1::UploadFileRequest req;
  auto* m = req.mutable_metadata();
  m->set_chat_id(chat_id);
  m->set_name("f.txt");
  m->set_content_type("text/plain");
  m->set_size_bytes(static_cast<int64_t>(content.size()));
  m->set_sha256(Sha256Hex(content));
  bool ok = writer->Write(req);
  for (size_t off = 0; ok && off < content.size(); off += 1 << 20) {
    v1::UploadFileRequest chunk;
    chunk.set_chunk(content.substr(off, 1 << 20));
    ok = writer->Write(chunk);
  }
  writer->WritesDone();
  grpc::Status s = writer->Finish();
  if (out != nullptr) *out = file;
  return s;
}

Api::Api(const std::string& gateway,
         std::shared_ptr<grpc::ChannelCredentials> creds)
    : channel_(grpc::CreateChannel(
          gateway, creds ? creds : grpc::InsecureChannelCredentials())),
      auth_(v1::AuthService::NewStub(channel_)),
      chat_(v1::ChatService::NewStub(channel_)) {}

grpc::Status Api::Register(const v1::RegisterRequest& req,
                           v1::RegisterResponse* resp) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  return auth_->Register(&ctx, req, resp);
}

grpc::Status Api::Login(const v1::LoginRequest& req, v1::LoginResponse* resp) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  return auth_->Login(&ctx, req, resp);
}

TestUser Api::NewUser(const std::string& prefix) {
  v1::RegisterRequest req;
  req.set_username(UniqueName(prefix));
  req.set_password("password-" + req.username());
  v1::RegisterResponse resp;
  grpc::Status s = Register(req, &resp);
  EXPECT_TRUE(s.ok()) << s.error_code() << " " << s.error_message();
  return TestUser{resp.user().user_id(), resp.user().username(),
                  resp.access_token()};
}

v1::Chat Api::Direct(const TestUser& a, const TestUser& b) {
  v1::CreateDirectChatRequest req;
  req.set_peer_user_id(b.user_id);
  v1::Chat chat;
  grpc::Status s =
      Call(a.token, &v1::ChatService::Stub::CreateDirectChat, req, &chat);
  EXPECT_TRUE(s.ok()) << s.error_code() << " " << s.error_message();
  return chat;
}

v1::Chat Api::Group(const TestUser& admin, const std::string& title,
                    const std::vector<TestUser>& members) {
  v1::CreateGroupChatRequest req;
  req.set_title(title);
  for (const auto& m : members) req.add_member_user_ids(m.user_id);
  v1::Chat chat;
  grpc::Status s =
      Call(admin.token, &v1::ChatService::Stub::CreateGroupChat, req, &chat);
  EXPECT_TRUE(s.ok()) << s.error_code() << " " << s.error_message();
  return chat;
}

grpc::Status Api::TrySend(const TestUser& from, const std::string& chat_id,
                          const std::string& text, v1::Message* out,
                          const std::string& client_message_id) {
  static std::atomic<int> counter{0};
  v1::SendMessageRequest req;
  req.set_chat_id(chat_id);
  req.set_client_message_id(client_message_id.empty()
                                ? absl::StrCat("cm-", UniqueName("m"), "-",
                                               counter++)
                                : client_message_id);
  req.set_text(text);
  v1::Message msg;
  grpc::Status s =
      Call(from.token, &v1::ChatService::Stub::SendMessage, req, &msg);
  if (out) *out = msg;
  return s;
}

v1::Message Api::Send(const TestUser& from, const std::string& chat_id,
                      const std::string& text) {
  v1::Message msg;
  grpc::Status s = TrySend(from, chat_id, text, &msg);
  EXPECT_TRUE(s.ok()) << s.error_code() << " " << s.error_message();
  return msg;
}

std::unique_ptr<LiveStream> LiveStream::Open(
    const std::string& gateway, const std::string& token,
    std::shared_ptr<grpc::ChannelCredentials> creds) {
  std::unique_ptr<LiveStream> ls(new LiveStream());
  ls->channel_ = grpc::CreateChannel(
      gateway, creds ? creds : grpc::InsecureChannelCredentials());
  ls->stub_ = v1::ChatService::NewStub(ls->channel_);
  ls->ctx_.AddMetadata("authorization", "Bearer " + token);
  ls->stream_ = ls->stub_->Connect(&ls->ctx_);
  ls->reader_ = std::thread([raw = ls.get()] { raw->ReadLoop(); });
  if (!ls->Sync()) return nullptr;
  return ls;
}

LiveStream::~LiveStream() {
  Cancel();
  if (reader_.joinable()) reader_.join();
}

void LiveStream::Cancel() { ctx_.TryCancel(); }

void LiveStream::ReadLoop() {
  v1::ServerFrame frame;
  while (stream_->Read(&frame)) {
    std::lock_guard<std::mutex> lock(mu_);
    frames_.push_back(frame);
    cv_.notify_all();
  }
  grpc::Status s = stream_->Finish();
  std::lock_guard<std::mutex> lock(mu_);
  ended_ = true;
  status_ = s;
  cv_.notify_all();
}

std::optional<v1::ServerFrame> LiveStream::WaitFor(
    const std::function<bool(const v1::ServerFrame&)>& pred,
    std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  const auto end = std::chrono::steady_clock::now() + timeout;
  size_t scanned = 0;
  for (;;) {
    for (; scanned < frames_.size(); ++scanned) {
      if (pred(frames_[scanned])) {
        v1::ServerFrame f = frames_[scanned];
        frames_.erase(frames_.begin(), frames_.begin() + scanned + 1);
        return f;
      }
    }
    if (ended_) return std::nullopt;
    if (cv_.wait_until(lock, end) == std::cv_status::timeout) {
      // One last scan happens on the next loop only if frames arrived.
      if (scanned == frames_.size()) return std::nullopt;
    }
  }
}

std::optional<v1::ChatEvent> LiveStream::WaitForEvent(
    const std::string& chat_id, uint64_t seq,
    std::chrono::milliseconds timeout) {
  auto f = WaitFor(
      [&](const v1::ServerFrame& f) {
        return f.has_chat_event() && f.chat_event().chat_id() == chat_id &&
               f.chat_event().seq() == seq;
      },
      timeout);
  if (!f) return std::nullopt;
  return f->chat_event();
}

std::vector<v1::ServerFrame> LiveStream::Drain() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<v1::ServerFrame> out(frames_.begin(), frames_.end());
  frames_.clear();
  return out;
}

bool LiveStream::Write(const v1::ClientFrame& frame) {
  std::lock_guard<std::mutex> lock(write_mu_);
  return stream_->Write(frame);
}

bool LiveStream::Sync(std::chrono::milliseconds timeout) {
  int64_t nonce;
  {
    std::lock_guard<std::mutex> lock(write_mu_);
    nonce = next_nonce_++;
    v1::ClientFrame ping;
    ping.mutable_ping()->set_nonce(nonce);
    if (!stream_->Write(ping)) return false;
  }
  // Keep other frames: only the pong itself is consumed.
  std::unique_lock<std::mutex> lock(mu_);
  const auto end = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    for (auto it = frames_.begin(); it != frames_.end(); ++it) {
      if (it->has_pong() && it->pong().nonce() == nonce) {
        frames_.erase(it);
        return true;
      }
    }
    if (ended_) return false;
    if (cv_.wait_until(lock, end) == std::cv_status::timeout) return false;
  }
}

std::optional<grpc::Status> LiveStream::WaitEnd(
    std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  if (!cv_.wait_for(lock, timeout, [this] { return ended_; })) {
    return std::nullopt;
  }
  return status_;
}

}  // namespace parley::e2e
