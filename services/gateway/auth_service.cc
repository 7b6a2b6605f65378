#include "services/gateway/auth_service.h"

#include <google/protobuf/util/time_util.h>

#include "absl/strings/numbers.h"
#include "common/grpc_util.h"
#include "common/pool_reactor.h"
#include "common/status_util.h"
#include "common/validation.h"

namespace parley::gateway {

namespace internal = ::parley::internal::v1;
using google::protobuf::util::TimeUtil;

AuthServiceImpl::AuthServiceImpl(
    AuthOptions options, internal::StorageService::StubInterface* storage,
    TokenAuthenticator* auth, ThreadPool* hash_pool)
    : options_(options), storage_(storage), auth_(auth), hash_pool_(hash_pool) {}

absl::Status AuthServiceImpl::IssueToken(
    int64_t user_id, std::string* token,
    google::protobuf::Timestamp* expire_time) {
  *token = GenerateAccessToken();
  const auto expire = std::chrono::system_clock::now() + options_.token_ttl;
  internal::CreateAccessTokenRequest req;
  req.set_user_id(user_id);
  req.set_token_hash(HashAccessToken(*token));
  *req.mutable_expire_time() = TimeUtil::MillisecondsToTimestamp(
      std::chrono::duration_cast<std::chrono::milliseconds>(
          expire.time_since_epoch())
          .count());
  internal::CreateAccessTokenResponse resp;
  grpc::ClientContext ctx;
  SetTimeout(&ctx, options_.storage_timeout);
  if (auto s = FromGrpcStatus(storage_->CreateAccessToken(&ctx, req, &resp));
      !s.ok()) {
    return s;
  }
  *expire_time = req.expire_time();
  auth_->Remember(req.token_hash(), user_id, expire);
  return absl::OkStatus();
}

grpc::ServerUnaryReactor* AuthServiceImpl::Register(
    grpc::CallbackServerContext* ctx, const parley::v1::RegisterRequest* req,
    parley::v1::RegisterResponse* resp) {
  // Cheap checks first, on the reactor thread.
  absl::Status valid = ValidateUsername(req->username());
  if (valid.ok()) valid = ValidatePassword(req->password());
  auto display_name = NormalizeDisplayName(req->display_name(), req->username());
  if (valid.ok()) valid = display_name.status();
  if (!valid.ok()) {
    auto* reactor = ctx->DefaultReactor();
    reactor->Finish(ToGrpcStatus(valid));
    return reactor;
  }
  return FinishOnPool(
      ctx, hash_pool_,
      [this, req, resp, name = *display_name]() -> absl::Status {
        auto hash = HashPassword(req->password(), options_.hash_cost);
        if (!hash.ok()) return hash.status();
        internal::CreateUserRequest create;
        create.set_username(req->username());
        create.set_display_name(name);
        create.set_password_hash(*hash);
        grpc::ClientContext cctx;
        SetTimeout(&cctx, options_.storage_timeout);
        if (auto s = FromGrpcStatus(
                storage_->CreateUser(&cctx, create, resp->mutable_user()));
            !s.ok()) {
          return s;
        }
        int64_t user_id = 0;
        if (!absl::SimpleAtoi(resp->user().user_id(), &user_id)) {
          return absl::InternalError("storage returned a malformed user id");
        }
        return IssueToken(user_id, resp->mutable_access_token(),
                          resp->mutable_expire_time());
      });
}

grpc::ServerUnaryReactor* AuthServiceImpl::Login(
    grpc::CallbackServerContext* ctx, const parley::v1::LoginRequest* req,
    parley::v1::LoginResponse* resp) {
  return FinishOnPool(ctx, hash_pool_, [this, req, resp]() -> absl::Status {
    const absl::Status refused =
        absl::UnauthenticatedError("invalid username or password");
    if (req->username().empty() || req->username().size() > 64 ||
        req->password().size() > kMaxPasswordBytes) {
      return refused;
    }
    internal::GetUserCredentialsRequest get;
    get.set_username(req->username());
    internal::UserCredentials creds;
    grpc::ClientContext cctx;
    SetTimeout(&cctx, options_.storage_timeout);
    absl::Status s = FromGrpcStatus(storage_->GetUserCredentials(&cctx, get, &creds));
    if (s.code() == absl::StatusCode::kNotFound) {
      // Spend the same effort as for a real account, so timing does not
      // reveal which usernames exist.
      static const std::string dummy =
          HashPassword("not-a-real-password", options_.hash_cost)
              .value_or("");
      VerifyPassword(dummy, req->password());
      return refused;
    }
    if (!s.ok()) return s;
    if (!VerifyPassword(creds.password_hash(), req->password())) return refused;
    *resp->mutable_user() = creds.user();
    int64_t user_id = 0;
    if (!absl::SimpleAtoi(creds.user().user_id(), &user_id)) {
      return absl::InternalError("storage returned a malformed user id");
    }
    return IssueToken(user_id, resp->mutable_access_token(),
                      resp->mutable_expire_time());
  });
}

}  // namespace parley::gateway
