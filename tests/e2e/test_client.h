// A gRPC client for end-to-end tests: typed calls with a bearer token and a
// live Connect stream whose frames can be awaited.
//
//   Api api(cluster->gateway_address(0));
//   TestUser alice = api.NewUser("alice");
//   auto stream = LiveStream::Open(cluster->gateway_address(1), alice.token);
//   auto frame = stream->WaitFor([](const ServerFrame& f) { ... }, 5s);
#ifndef PARLEY_TESTS_E2E_TEST_CLIENT_H_
#define PARLEY_TESTS_E2E_TEST_CLIENT_H_

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "parley/v1/parley.grpc.pb.h"

namespace parley::e2e {

namespace v1 = ::parley::v1;

struct TestUser {
  std::string user_id;
  std::string username;
  std::string token;
};

// A unique username with the given prefix.
std::string UniqueName(const std::string& prefix);

// Lower-case hex SHA-256 of `data`.
std::string Sha256Hex(const std::string& data);

// A Connect stream's send frame: `text` to `chat_id`, keyed `cmid`.
v1::ClientFrame SendFrame(const std::string& chat_id, const std::string& cmid,
                          const std::string& text);

class Api {
 public:
  // `creds` secure the channel (default: plaintext).
  explicit Api(const std::string& gateway,
               std::shared_ptr<grpc::ChannelCredentials> creds = nullptr);

  TestUser NewUser(const std::string& prefix = "user");
  grpc::Status Register(const v1::RegisterRequest& req,
                        v1::RegisterResponse* resp);
  grpc::Status Login(const v1::LoginRequest& req, v1::LoginResponse* resp);

  // Calls a ChatService method with `authorization: Bearer <token>` and a
  // 10 s deadline (or `timeout`).
  template <typename Req, typename Resp>
  grpc::Status Call(
      const std::string& token,
      grpc::Status (v1::ChatService::Stub::*method)(grpc::ClientContext*,
                                                    const Req&, Resp*),
      const Req& req, Resp* resp,
      std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + timeout);
    if (!token.empty()) ctx.AddMetadata("authorization", "Bearer " + token);
    return (chat_.get()->*method)(&ctx, req, resp);
  }

  // Shorthands that fail the current test on error.
  v1::Chat Direct(const TestUser& a, const TestUser& b);
  v1::Chat Group(const TestUser& admin, const std::string& title,
                 const std::vector<TestUser>& members);
  v1::Message Send(const TestUser& from, const std::string& chat_id,
                   const std::string& text);
  grpc::Status TrySend(const TestUser& from, const std::string& chat_id,
                       const std::string& text, v1::Message* out = nullptr,
                       const std::string& client_message_id = "");

  // Uploads `content` in 1 MiB chunks with matching metadata (as "f.txt",
  // text/plain); `token` may be empty (no authorization metadata).
  grpc::Status Upload(const std::string& token, const std::string& chat_id,
                      const std::string& content, v1::File* out = nullptr);

  v1::ChatService::Stub* chat() { return chat_.get(); }

 private:
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::AuthService::Stub> auth_;
  std::unique_ptr<v1::ChatService::Stub> chat_;
};

// A Connect stream read by a background thread.
class LiveStream {
 public:
  // Opens the stream and waits for the Pong to a first Ping, which means the
  // gateway has registered the route: live events will arrive.
  static std::unique_ptr<LiveStream> Open(
      const std::string& gateway, const std::string& token,
      std::shared_ptr<grpc::ChannelCredentials> creds = nullptr);
  ~LiveStream();

  // Waits for the first frame matching `pred`, removing it and every frame
  // before it. nullopt on timeout or stream end.
  std::optional<v1::ServerFrame> WaitFor(
      const std::function<bool(const v1::ServerFrame&)>& pred,
      std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // Waits for the chat_event of a chat with a given seq.
  std::optional<v1::ChatEvent> WaitForEvent(
      const std::string& chat_id, uint64_t seq,
      std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // Frames received and not yet consumed.
  std::vector<v1::ServerFrame> Drain();
  // Writes a frame (e.g. a send); false once the stream is broken.
  bool Write(const v1::ClientFrame& frame);
  // Round trip of a ping: every frame sent before it has been received.
  bool Sync(std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // Final status once the stream has ended.
  std::optional<grpc::Status> WaitEnd(std::chrono::milliseconds timeout);
  void Cancel();

 private:
  LiveStream() = default;
  void ReadLoop();

  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::ChatService::Stub> stub_;
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReaderWriter<v1::ClientFrame, v1::ServerFrame>>
      stream_;
  std::thread reader_;
  std::mutex write_mu_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<v1::ServerFrame> frames_;
  bool ended_ = false;
  grpc::Status status_;
  int64_t next_nonce_ = 1;
};

}  // namespace parley::e2e

#endif  // PARLEY_TESTS_E2E_TEST_CLIENT_H_
