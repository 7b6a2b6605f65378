#include "services/gateway/message_backends.h"

#include <algorithm>
#include <utility>

#include "common/async_call.h"
#include "common/batch_outcomes.h"

namespace parley::gateway {

namespace internal = ::parley::internal::v1;

MessageBackends::MessageBackends(const std::vector<std::string>& addresses,
                                 const TlsCredentials& tls,
                                 ConnectionRegistry* registry,
                                 SendBatchOptions send_options) {
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
    if (send_options.send_calls > 0) {
      using Async = internal::MessageService::StubInterface::async_interface;
      Async* async =
          static_cast<internal::MessageService::StubInterface*>(stub)->async();
      inst->sends = std::make_unique<SendBatcher>(
          SendBatcher::Options{
              .max_in_flight = send_options.send_calls,
              .max_batch = std::clamp<size_t>(send_options.max_batch, 1,
                                              kMaxBatchRequests)},
          [async](std::vector<internal::AppendMessageRequest> sends,
                  std::chrono::milliseconds timeout,
                  SendBatcher::Finish finish) {
            CallBatch(
                async, &Async::SendMessages, &Async::SendMessage,
                std::move(sends), timeout,
                [](internal::SendOutcome* o) {
                  return std::move(*o->mutable_message());
                },
                std::move(finish));
          });
    }
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
  return InstanceForChat(chat_id, attempt)->stub.get();
}

MessageBackends::Instance* MessageBackends::InstanceForChat(int64_t chat_id,
                                                            int attempt) {
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
    return inst;
  }
  return instances_[(start + attempt) % n].get();
}

void MessageBackends::Send(int64_t chat_id, internal::AppendMessageRequest send,
                           std::chrono::milliseconds timeout, SendDone done) {
  Instance* inst = InstanceForChat(chat_id, 0);
  if (inst->sends == nullptr) {
    CallAsync(
        static_cast<internal::MessageService::StubInterface*>(inst->stub.get())
            ->async(),
        &internal::MessageService::StubInterface::async_interface::SendMessage,
        std::move(send), timeout, std::move(done));
    return;
  }
  inst->sends->Submit(std::move(send),
                      std::chrono::system_clock::now() + timeout,
                      std::move(done));
}

}  // namespace parley::gateway
