// Runs a blocking unary handler body on a ThreadPool and finishes the
// callback-API reactor from there, so reactor threads never block.
//
//   grpc::ServerUnaryReactor* Service::GetChat(grpc::CallbackServerContext* ctx,
//                                             const Req* req, Chat* resp) {
//     return parley::FinishOnPool(ctx, &pool_, [=] {
//       return repo_->GetChat(*req, resp);  // absl::Status
//     });
//   }
#ifndef PARLEY_COMMON_POOL_REACTOR_H_
#define PARLEY_COMMON_POOL_REACTOR_H_

#include <grpcpp/grpcpp.h>
#include <grpcpp/support/server_callback.h>

#include <chrono>
#include <utility>

#include "absl/status/status.h"
#include "common/status_util.h"
#include "common/thread_pool.h"

namespace parley {

template <typename Fn>
grpc::ServerUnaryReactor* FinishOnPool(grpc::CallbackServerContext* ctx,
                                       ThreadPool* pool, Fn fn) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  const auto deadline = ctx->deadline();
  const bool queued = pool->TrySubmit(
      [reactor, deadline, fn = std::move(fn)]() mutable {
        if (std::chrono::system_clock::now() >= deadline) {
          reactor->Finish(ToGrpcStatus(
              absl::DeadlineExceededError("deadline passed while queued")));
          return;
        }
        reactor->Finish(ToGrpcStatus(fn()));
      });
  if (!queued) {
    reactor->Finish(
        ToGrpcStatus(absl::UnavailableError("server is overloaded")));
  }
  return reactor;
}

}  // namespace parley

#endif  // PARLEY_COMMON_POOL_REACTOR_H_
