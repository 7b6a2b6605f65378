#include "services/client/health_check.h"

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/support/byte_buffer.h>

#include <cstdint>
#include <future>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/grpc_util.h"
#include "services/client/client_status.h"

namespace parley::client {
namespace {

constexpr char kCheckMethod[] = "/grpc.health.v1.Health/Check";

void AppendVarint(uint64_t v, std::string* out) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

bool ReadVarint(absl::string_view* in, uint64_t* v) {
  *v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (in->empty()) return false;
    const uint8_t b = static_cast<uint8_t>((*in)[0]);
    in->remove_prefix(1);
    *v |= static_cast<uint64_t>(b & 0x7f) << shift;
    if ((b & 0x80) == 0) return true;
  }
  return false;
}

}  // namespace

std::string HealthStatusName(HealthStatus status) {
  switch (status) {
    case HealthStatus::kUnknown:
      return "UNKNOWN";
    case HealthStatus::kServing:
      return "SERVING";
    case HealthStatus::kNotServing:
      return "NOT_SERVING";
    case HealthStatus::kServiceUnknown:
      return "SERVICE_UNKNOWN";
  }
  return absl::StrCat("STATUS_", static_cast<int>(status));
}

std::string EncodeHealthCheckRequest(absl::string_view service) {
  std::string out;
  if (service.empty()) return out;
  out.push_back(0x0a);  // field 1, length-delimited
  AppendVarint(service.size(), &out);
  out.append(service.data(), service.size());
  return out;
}

absl::StatusOr<HealthStatus> DecodeHealthCheckResponse(absl::string_view in) {
  uint64_t status = 0;  // proto3 default: UNKNOWN
  while (!in.empty()) {
    uint64_t key;
    if (!ReadVarint(&in, &key)) {
      return absl::InvalidArgumentError("malformed health response");
    }
    const uint64_t field = key >> 3;
    const int wire_type = static_cast<int>(key & 7);
    uint64_t v;
    switch (wire_type) {
      case 0:  // varint
        if (!ReadVarint(&in, &v)) {
          return absl::InvalidArgumentError("malformed health response");
        }
        if (field == 1) status = v;
        break;
      case 1:  // 64-bit
        if (in.size() < 8) {
          return absl::InvalidArgumentError("malformed health response");
        }
        in.remove_prefix(8);
        break;
      case 2:  // length-delimited
        if (!ReadVarint(&in, &v) || v > in.size()) {
          return absl::InvalidArgumentError("malformed health response");
        }
        in.remove_prefix(static_cast<size_t>(v));
        break;
      case 5:  // 32-bit
        if (in.size() < 4) {
          return absl::InvalidArgumentError("malformed health response");
        }
        in.remove_prefix(4);
        break;
      default:
        return absl::InvalidArgumentError("malformed health response");
    }
  }
  return static_cast<HealthStatus>(static_cast<int>(status & 0x7fffffff));
}

absl::StatusOr<HealthStatus> CheckHealth(const std::string& target,
                                         const std::string& service,
                                         std::chrono::milliseconds timeout,
                                         const TlsCredentials& tls) {
  auto channel = MakeChannel(target, tls);
  grpc::GenericStub stub(channel);

  const std::string request_bytes = EncodeHealthCheckRequest(service);
  grpc::Slice slice(request_bytes);
  grpc::ByteBuffer request(&slice, 1);
  grpc::ByteBuffer response;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + timeout);

  std::promise<grpc::Status> done;
  stub.UnaryCall(&ctx, kCheckMethod, grpc::StubOptions(), &request, &response,
                 [&done](grpc::Status s) { done.set_value(std::move(s)); });
  const grpc::Status status = done.get_future().get();
  if (!status.ok()) return StatusFromGrpc(status);

  std::vector<grpc::Slice> slices;
  // A zero-length response (status UNKNOWN) may come as an unset buffer.
  if (response.Valid() && !response.Dump(&slices).ok()) {
    return absl::InternalError("cannot read health response");
  }
  std::string bytes;
  for (const grpc::Slice& s : slices) {
    bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  return DecodeHealthCheckResponse(bytes);
}

}  // namespace parley::client
