#include "services/gateway/token_authenticator.h"

#include <google/protobuf/util/time_util.h>

#include <utility>

#include "common/async_call.h"
#include "common/credentials.h"

namespace parley::gateway {

namespace internal = ::parley::internal::v1;
using google::protobuf::util::TimeUtil;

TokenAuthenticator::TokenAuthenticator(
    internal::StorageService::StubInterface* storage, Options options)
    : storage_(storage), options_(options) {}

void TokenAuthenticator::Authenticate(const grpc::ServerContextBase* ctx,
                                      Done done) {
  const auto& md = ctx->client_metadata();
  auto it = md.find("authorization");
  absl::string_view header;
  if (it != md.end()) header = absl::string_view(it->second.data(), it->second.size());
  auto token = ParseBearer(header);
  if (!token.ok()) {
    done(token.status());
    return;
  }
  std::string hash = HashAccessToken(*token);
  const auto now = std::chrono::system_clock::now();
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto e = cache_.find(hash);
    if (e != cache_.end()) {
      if (e->second.expire_time <= now) {
        cache_.erase(e);
        done(absl::UnauthenticatedError("access token has expired"));
        return;
      }
      if (e->second.cached_until > std::chrono::steady_clock::now()) {
        const int64_t user_id = e->second.user_id;
        done(user_id);
        return;
      }
      cache_.erase(e);
    }
  }
  internal::ResolveAccessTokenRequest req;
  req.set_token_hash(hash);
  CallAsync(
      storage_->async(),
      &internal::StorageService::StubInterface::async_interface::ResolveAccessToken,
      std::move(req), options_.storage_timeout,
      [this, hash = std::move(hash), done = std::move(done)](
          absl::StatusOr<internal::ResolveAccessTokenResponse> r) {
        if (!r.ok()) {
          if (r.status().code() == absl::StatusCode::kUnauthenticated ||
              r.status().code() == absl::StatusCode::kNotFound) {
            done(absl::UnauthenticatedError("access token is invalid or expired"));
          } else {
            done(absl::UnavailableError("cannot check the access token now"));
          }
          return;
        }
        Remember(hash, r->user_id(),
                 std::chrono::system_clock::time_point(
                     std::chrono::milliseconds(
                         TimeUtil::TimestampToMilliseconds(r->expire_time()))));
        done(r->user_id());
      });
}

void TokenAuthenticator::Remember(
    const std::string& token_hash, int64_t user_id,
    std::chrono::system_clock::time_point expire_time) {
  std::lock_guard<std::mutex> lock(mu_);
  if (cache_.size() >= options_.max_cache_entries) cache_.clear();
  cache_[token_hash] = Entry{
      user_id, expire_time, std::chrono::steady_clock::now() + options_.cache_ttl};
}

}  // namespace parley::gateway
