// Both ends of a batch call (AppendMessages, SendMessages): a request with
// `repeated ... requests`, a response with one outcome per request, each an
// `int32 code` (a gRPC status code, 0 on success), a `string
// error_message`, and the request's result.
//
// Server side: refuse oversized calls, then fill the outcomes in as
// requests finish, on any thread; the call finishes after the last one.
//
//   if (auto s = CheckBatchSize(n); !s.ok()) ...  // INVALID_ARGUMENT
//   auto record = RecordOutcomes<ChatEventResult>(
//       reactor, resp->mutable_outcomes(), n,
//       [](AppendOutcome* o, ChatEventResult r) {
//         *o->mutable_result() = std::move(r);
//       });
//   record(i, std::move(result_i));  // once per request
//
// Client side: one result per request, or one failure for the whole call.
// A peer that predates the batch method gets one single call per request.
//
//   CallBatch(stub->async(), &Async::AppendMessages, &Async::AppendMessage,
//             std::move(requests), timeout,
//             [](AppendOutcome* o) { return std::move(*o->mutable_result()); },
//             [](absl::StatusOr<std::vector<absl::StatusOr<R>>> r) { ... });
#ifndef PARLEY_COMMON_BATCH_OUTCOMES_H_
#define PARLEY_COMMON_BATCH_OUTCOMES_H_

#include <google/protobuf/repeated_ptr_field.h>
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "common/async_call.h"
#include "common/grpc_util.h"
#include "common/status_util.h"

namespace parley {

// Most requests one batch call may carry.
inline constexpr int kMaxBatchRequests = 1024;

// INVALID_ARGUMENT naming `requests` when a call carries more than
// kMaxBatchRequests.
inline absl::Status CheckBatchSize(int n) {
  if (n <= kMaxBatchRequests) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      "requests: at most ", kMaxBatchRequests, " per call, got ", n));
}

// Sizes `outcomes` to `n` and returns the callback that records request i's
// result; after the n-th the call finishes OK (at once when `n` is 0).
template <typename Result, typename Outcome, typename SetResult>
std::function<void(int, absl::StatusOr<Result>)> RecordOutcomes(
    grpc::ServerUnaryReactor* reactor,
    google::protobuf::RepeatedPtrField<Outcome>* outcomes, int n,
    SetResult set_result) {
  if (n == 0) {
    reactor->Finish(grpc::Status::OK);
    return [](int, absl::StatusOr<Result>) {};
  }
  // Sized before any request can finish: each thread then writes only its
  // own element.
  for (int i = 0; i < n; ++i) outcomes->Add();
  auto left = std::make_shared<std::atomic<int>>(n);
  return [reactor, outcomes, left, set_result = std::move(set_result)](
             int i, absl::StatusOr<Result> r) {
    Outcome* out = outcomes->Mutable(i);
    if (r.ok()) {
      set_result(out, std::move(*r));
    } else {
      const grpc::Status g = ToGrpcStatus(r.status());
      out->set_code(static_cast<int32_t>(g.error_code()));
      out->set_error_message(g.error_message());
    }
    if (left->fetch_sub(1, std::memory_order_acq_rel) == 1) {
      reactor->Finish(grpc::Status::OK);
    }
  };
}

// One batch's results, or the failure of the whole call.
template <typename Result>
using BatchResults = absl::StatusOr<std::vector<absl::StatusOr<Result>>>;

// Builds a batch's results from answers that come one per item, in any
// order and on any thread: returns the callback for item i; `finish` runs
// once all `n` have answered (at once when `n` is 0).
template <typename Result>
std::function<void(size_t, absl::StatusOr<Result>)> GatherResults(
    size_t n, std::function<void(BatchResults<Result>)> finish) {
  struct State {
    std::mutex mu;
    std::vector<absl::StatusOr<Result>> results;
    size_t left;
    std::function<void(BatchResults<Result>)> finish;
  };
  auto state = std::make_shared<State>();
  state->results.resize(n, absl::UnknownError("not answered"));
  state->left = n;
  state->finish = std::move(finish);
  if (n == 0) state->finish(std::move(state->results));
  return [state](size_t i, absl::StatusOr<Result> r) {
    {
      std::lock_guard<std::mutex> lock(state->mu);
      state->results[i] = std::move(r);
      if (--state->left > 0) return;
    }
    state->finish(std::move(state->results));
  };
}

// Sends `requests` as one `batch` call; `take_result` moves a successful
// outcome's result out. When the peer has no `batch` method (UNIMPLEMENTED:
// it is older than this caller, as during a rolling upgrade), each request
// goes as its own `single` call instead.
template <typename Async, typename BatchRequest, typename BatchResponse,
          typename Request, typename Result, typename TakeResult,
          typename Finish>
void CallBatch(Async* async,
               void (Async::*batch)(grpc::ClientContext*, const BatchRequest*,
                                    BatchResponse*,
                                    std::function<void(grpc::Status)>),
               void (Async::*single)(grpc::ClientContext*, const Request*,
                                     Result*,
                                     std::function<void(grpc::Status)>),
               std::vector<Request> requests, std::chrono::milliseconds timeout,
               TakeResult take_result, Finish finish) {
  struct Call {
    async_call_internal::Tracked tracked;  // until the callback's end
    grpc::ClientContext ctx;
    BatchRequest request;
    BatchResponse response;
  };
  auto call = std::make_shared<Call>();
  call->tracked.Register(call, &call->ctx);
  call->request.mutable_requests()->Reserve(static_cast<int>(requests.size()));
  for (Request& r : requests) *call->request.add_requests() = std::move(r);
  SetTimeout(&call->ctx, timeout);
  (async->*batch)(
      &call->ctx, &call->request, &call->response,
      [async, single, call, timeout, take_result = std::move(take_result),
       finish = std::move(finish)](grpc::Status status) mutable {
        // As in CallAsync: the callbacks go first, the call counts last.
        auto own = std::move(call);
        auto take = std::move(take_result);
        auto fin = std::move(finish);
        if (status.error_code() == grpc::StatusCode::UNIMPLEMENTED) {
          const int n = own->request.requests_size();
          auto answer = GatherResults<Result>(
              n, std::function<void(BatchResults<Result>)>(std::move(fin)));
          for (int i = 0; i < n; ++i) {
            CallAsync(async, single, own->request.requests(i), timeout,
                      [answer, i](absl::StatusOr<Result> r) {
                        answer(i, std::move(r));
                      });
          }
          return;
        }
        if (!status.ok()) {
          fin(FromGrpcStatus(status));
          return;
        }
        std::vector<absl::StatusOr<Result>> results;
        results.reserve(own->response.outcomes_size());
        for (auto& o : *own->response.mutable_outcomes()) {
          if (o.code() == 0) {
            results.push_back(take(&o));
          } else {
            results.push_back(FromGrpcStatus(grpc::Status(
                static_cast<grpc::StatusCode>(o.code()), o.error_message())));
          }
        }
        fin(std::move(results));
      });
}

}  // namespace parley

#endif  // PARLEY_COMMON_BATCH_OUTCOMES_H_
