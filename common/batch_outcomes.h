// Both ends of a batch call whose response holds one outcome per request:
// an `int32 code` (a gRPC status code, 0 on success), a `string
// error_message`, and the request's result.
//
// Server side: the outcomes are sized up front and filled in as requests
// finish, on any thread; the call finishes after the last one.
//
//   auto record = RecordOutcomes(
//       reactor, resp->mutable_outcomes(), n,
//       [](AppendOutcome* o, ChatEventResult r) {
//         *o->mutable_result() = std::move(r);
//       });
//   record(i, std::move(result_i));  // once per request
//
// Client side: back to one StatusOr per request.
//
//   auto results = OutcomeResults<ChatEventResult>(
//       resp.mutable_outcomes(),
//       [](AppendOutcome* o) { return std::move(*o->mutable_result()); });
#ifndef PARLEY_COMMON_BATCH_OUTCOMES_H_
#define PARLEY_COMMON_BATCH_OUTCOMES_H_

#include <google/protobuf/repeated_ptr_field.h>
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "common/status_util.h"

namespace parley {

template <typename Result, typename Outcome, typename SetResult>
std::function<void(int, absl::StatusOr<Result>)> RecordOutcomes(
    grpc::ServerUnaryReactor* reactor,
    google::protobuf::RepeatedPtrField<Outcome>* outcomes, int n,
    SetResult set_result) {
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

template <typename Result, typename Outcome, typename TakeResult>
std::vector<absl::StatusOr<Result>> OutcomeResults(
    google::protobuf::RepeatedPtrField<Outcome>* outcomes,
    TakeResult take_result) {
  std::vector<absl::StatusOr<Result>> results;
  results.reserve(outcomes->size());
  for (Outcome& o : *outcomes) {
    if (o.code() == 0) {
      results.push_back(take_result(&o));
    } else {
      results.push_back(FromGrpcStatus(grpc::Status(
          static_cast<grpc::StatusCode>(o.code()), o.error_message())));
    }
  }
  return results;
}

}  // namespace parley

#endif  // PARLEY_COMMON_BATCH_OUTCOMES_H_
