// Every message instance this gateway knows: a stub per instance for calls,
// and a PushSubscriber per instance holding its Subscribe stream open.
//
//   MessageBackends backends({"10.0.0.5:50052", "10.0.0.6:50052"}, &registry);
//   backends.Start();
//   auto* stub = backends.ForChat(chat_id);
#ifndef PARLEY_SERVICES_GATEWAY_MESSAGE_BACKENDS_H_
#define PARLEY_SERVICES_GATEWAY_MESSAGE_BACKENDS_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <vector>

#include "common/grpc_util.h"
#include "parley/internal/v1/message.grpc.pb.h"
#include "services/gateway/connection_registry.h"
#include "services/gateway/push_subscriber.h"

namespace parley::gateway {

class MessageBackends {
 public:
  // `tls` secures the channels to the instances.
  MessageBackends(const std::vector<std::string>& addresses,
                  const TlsCredentials& tls, ConnectionRegistry* registry);
  ~MessageBackends();

  void Start();
  void Stop();

  size_t size() const { return instances_.size(); }
  // The instance for a chat (stable, so one chat's writes go to one place
  // while it is healthy), skipping instances that are known to be down.
  // `attempt` > 0 picks the next healthy one, for a retry.
  ::parley::internal::v1::MessageService::StubInterface* ForChat(
      int64_t chat_id, int attempt = 0);
  // Number of Subscribe streams currently live.
  int live_subscriptions() const;

 private:
  struct Instance {
    std::string address;
    std::shared_ptr<grpc::Channel> channel;
    std::unique_ptr<::parley::internal::v1::MessageService::Stub> stub;
    std::unique_ptr<PushSubscriber> subscriber;
  };
  std::vector<std::unique_ptr<Instance>> instances_;
};

}  // namespace parley::gateway

#endif  // PARLEY_SERVICES_GATEWAY_MESSAGE_BACKENDS_H_
