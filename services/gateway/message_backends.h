// Every message instance this gateway knows: a stub per instance for calls,
// and a PushSubscriber per instance holding its Subscribe stream open.
//
// Sends to one instance share SendMessages calls (see CallBatcher).
//
//   MessageBackends backends({"10.0.0.5:50052", "10.0.0.6:50052"}, tls,
//                            &registry, {.send_calls = 2});
//   backends.Start();
//   auto* stub = backends.ForChat(chat_id);
//   backends.SendAll(chat_id, {{std::move(append), [](auto m) { ... }}},
//                    timeout);
#ifndef PARLEY_SERVICES_GATEWAY_MESSAGE_BACKENDS_H_
#define PARLEY_SERVICES_GATEWAY_MESSAGE_BACKENDS_H_

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/call_batcher.h"
#include "common/grpc_util.h"
#include "parley/internal/v1/message.grpc.pb.h"
#include "services/gateway/connection_registry.h"
#include "services/gateway/push_subscriber.h"

namespace parley::gateway {

struct MessageBackendOptions {
  // SendMessages calls in flight per instance; sends arriving meanwhile
  // share the next call. 0: one SendMessage call per send.
  int send_calls = 2;
  // Most sends one call carries (at most kMaxBatchRequests).
  size_t max_batch = 256;
  // Channels to the instances, which also carry their Subscribe streams.
  ChannelOptions channel = {};
};

class MessageBackends {
 public:
  using SendDone = std::function<void(absl::StatusOr<::parley::v1::Message>)>;

  // `tls` secures the channels to the instances.
  MessageBackends(const std::vector<std::string>& addresses,
                  const TlsCredentials& tls, ConnectionRegistry* registry,
                  MessageBackendOptions options = {});
  ~MessageBackends();

  void Start();
  void Stop();

  size_t size() const { return instances_.size(); }
  // The instance for a chat (stable, so one chat's writes go to one place
  // while it is healthy), skipping instances that are known to be down.
  // `attempt` > 0 picks the next healthy one, for a retry.
  ::parley::internal::v1::MessageService::StubInterface* ForChat(
      int64_t chat_id, int attempt = 0);
  using SendBatcher = CallBatcher<::parley::internal::v1::AppendMessageRequest,
                                  ::parley::v1::Message>;
  // One send of a SendAll group: `item` and its `done`.
  using SendEntry = SendBatcher::Entry;
  // Sends `sends`, all to `chat_id`, through the instance ForChat(chat_id)
  // picks, as one group that stays in one SendMessages call (shared with
  // the other sends in flight to it) and, below it, in one storage
  // transaction, in order. Sends that find the instance unreachable are
  // tried once more on the next one, again together and in order: a send
  // is idempotent by client_message_id, so that is safe. Each `done` runs
  // exactly once, on any thread.
  void SendAll(int64_t chat_id, std::vector<SendEntry> sends,
               std::chrono::milliseconds timeout, int attempt = 0);
  // Number of Subscribe streams currently live.
  int live_subscriptions() const;

 private:
  struct Instance {
    std::string address;
    std::shared_ptr<grpc::Channel> channel;
    std::unique_ptr<::parley::internal::v1::MessageService::Stub> stub;
    std::unique_ptr<PushSubscriber> subscriber;
    // Null when sends are not batched.
    std::unique_ptr<SendBatcher> sends;
  };
  Instance* InstanceForChat(int64_t chat_id, int attempt);
  // One SendMessages call carrying `sends` (CallBatch falls back to a
  // SendMessage call per send on an instance without it): the call behind
  // batched and unbatched sends alike.
  static void SendMessagesCall(
      ::parley::internal::v1::MessageService::StubInterface* stub,
      std::vector<::parley::internal::v1::AppendMessageRequest> sends,
      std::chrono::milliseconds timeout, SendBatcher::Finish finish);
  std::vector<std::unique_ptr<Instance>> instances_;
};

}  // namespace parley::gateway

#endif  // PARLEY_SERVICES_GATEWAY_MESSAGE_BACKENDS_H_
