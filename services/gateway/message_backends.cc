#include "services/gateway/message_backends.h"

#include "common/grpc_util.h"

namespace parley::gateway {

namespace internal = ::parley::internal::v1;

MessageBackends::MessageBackends(const std::vector<std::string>& addresses,
                                 const TlsCredentials& tls,
                                 ConnectionRegistry* registry) {
  for (const auto& a : addresses) {
    auto inst = std::make_unique<Instance>();
    inst->address = a;
    inst->channel = MakeChannel(a, tls);
    inst->stub = internal::MessageService::NewStub(inst->channel);
    internal::MessageService::Stub* stub = inst->stub.get();
    inst->subscriber = std::make_unique<PushSubscriber>(
        "message " + a,
        [stub](grpc::ClientContext* ctx, const internal::SubscribeRequest* req,
               grpc::ClientReadReactor<internal::Delivery>* reactor) {
          stub->async()->Subscribe(ctx, req, reactor);
        },
        registry);
    instances_.push_back(std::move(inst));
  }
}

MessageBackends::~MessageBackends() { Stop(); }

void MessageBackends::Start() {
  for (auto& inst : instances_) inst->subscriber->Start();
}

void MessageBackends::Stop() {
  for (auto& inst : instances_) inst->subscriber->Stop();
}

int MessageBackends::live_subscriptions() const {
  int n = 0;
  for (const auto& inst : instances_) n += inst->subscriber->live();
  return n;
}

internal::MessageService::StubInterface* MessageBackends::ForChat(
    int64_t chat_id, int attempt) {
  const size_t n = instances_.size();
  const size_t start = static_cast<size_t>(chat_id) % n;
  int skip = attempt;
  // Healthy (or not yet known) instances only.
  for (size_t k = 0; k < n; ++k) {
    Instance* inst = instances_[(start + k) % n].get();
    if (inst->channel->GetState(true) == GRPC_CHANNEL_TRANSIENT_FAILURE) {
      continue;
    }
    if (skip-- > 0) continue;
    return inst->stub.get();
  }
  return instances_[(start + attempt) % n]->stub.get();
}

}  // namespace parley::gateway
