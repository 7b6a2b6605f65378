#include "services/gateway/message_backends.h"

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "parley/internal/v1/message.grpc.pb.h"

namespace parley::gateway {
namespace {

namespace iv1 = ::parley::internal::v1;
using ::testing::ElementsAre;

// A message instance that records the client_message_ids of each
// SendMessages call, and answers each send with its key as the text, or
// the whole call with `fail_with`.
class FakeMessageService final : public iv1::MessageService::CallbackService {
 public:
  explicit FakeMessageService(grpc::Status fail_with = grpc::Status::OK)
      : fail_with_(std::move(fail_with)) {}

  grpc::ServerUnaryReactor* SendMessages(
      grpc::CallbackServerContext* ctx, const iv1::SendMessagesRequest* req,
      iv1::SendMessagesResponse* resp) override {
    std::vector<std::string> keys;
    for (const auto& r : req->requests()) {
      keys.push_back(r.client_message_id());
      resp->add_outcomes()->mutable_message()->set_text(r.client_message_id());
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      calls_.push_back(std::move(keys));
    }
    auto* reactor = ctx->DefaultReactor();
    reactor->Finish(fail_with_);
    return reactor;
  }

  std::vector<std::vector<std::string>> calls() {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_;
  }

 private:
  const grpc::Status fail_with_;
  std::mutex mu_;
  std::vector<std::vector<std::string>> calls_;
};

struct Running {
  std::unique_ptr<grpc::Server> server;
  std::string address;
};

Running Serve(grpc::Service* service) {
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                           &port);
  builder.RegisterService(service);
  Running r;
  r.server = builder.BuildAndStart();
  r.address = absl::StrCat("127.0.0.1:", port);
  return r;
}

// Sends keys k0..k{n-1} to `chat_id` as one group; returns each send's
// text (its key) or status, in send order.
std::vector<std::string> SendGroup(MessageBackends* backends, int64_t chat_id,
                                   int n) {
  std::vector<std::promise<std::string>> got(n);
  std::vector<MessageBackends::SendEntry> sends;
  for (int i = 0; i < n; ++i) {
    MessageBackends::SendEntry e;
    e.item.set_chat_id(chat_id);
    e.item.set_client_message_id(absl::StrCat("k", i));
    e.done = [p = &got[i]](absl::StatusOr<::parley::v1::Message> m) {
      p->set_value(m.ok() ? m->text() : m.status().ToString());
    };
    sends.push_back(std::move(e));
  }
  backends->SendAll(chat_id, std::move(sends), std::chrono::seconds(10));
  std::vector<std::string> out;
  for (auto& p : got) {
    auto f = p.get_future();
    if (f.wait_for(std::chrono::seconds(20)) != std::future_status::ready) {
      out.push_back("no answer");
      continue;
    }
    out.push_back(f.get());
  }
  return out;
}

class MessageBackendsTest : public ::testing::TestWithParam<int> {
 protected:
  // send_calls: 4 (shared batch calls) or 0 (a call per group).
  int send_calls() const { return GetParam(); }
  ConnectionRegistry registry_{nullptr, {.gateway_id = "g-test"}};
};

TEST_P(MessageBackendsTest, AGroupLeavesInOneCallInOrderOverGrpc) {
  FakeMessageService good;
  Running s = Serve(&good);
  MessageBackends backends({s.address}, TlsCredentials(), &registry_,
                           {.send_calls = send_calls()});
  EXPECT_THAT(SendGroup(&backends, 7, 5),
              ElementsAre("k0", "k1", "k2", "k3", "k4"));
  EXPECT_THAT(good.calls(),
              ElementsAre(ElementsAre("k0", "k1", "k2", "k3", "k4")));
  s.server->Shutdown();
}

TEST_P(MessageBackendsTest, AGroupAnsweredUnavailableMovesOnTogetherOverGrpc) {
  FakeMessageService down(grpc::Status(grpc::StatusCode::UNAVAILABLE, "down"));
  FakeMessageService good;
  Running a = Serve(&down);
  Running b = Serve(&good);
  MessageBackends backends({a.address, b.address}, TlsCredentials(), &registry_,
                           {.send_calls = send_calls()});
  // Chat 8 is the first instance's (8 mod 2); its answer sends the group to
  // the second one, still as one call, in order.
  EXPECT_THAT(SendGroup(&backends, 8, 4), ElementsAre("k0", "k1", "k2", "k3"));
  EXPECT_THAT(down.calls(), ElementsAre(ElementsAre("k0", "k1", "k2", "k3")));
  EXPECT_THAT(good.calls(), ElementsAre(ElementsAre("k0", "k1", "k2", "k3")));
  a.server->Shutdown();
  b.server->Shutdown();
}

INSTANTIATE_TEST_SUITE_P(SendCalls, MessageBackendsTest,
                         ::testing::Values(4, 0));

}  // namespace
}  // namespace parley::gateway
