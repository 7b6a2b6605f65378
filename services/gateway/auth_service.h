// AuthService: Register and Login. Password hashing (argon2id) is CPU- and
// memory-heavy, so it runs on its own bounded pool, never on reactor threads.
#ifndef PARLEY_SERVICES_GATEWAY_AUTH_SERVICE_H_
#define PARLEY_SERVICES_GATEWAY_AUTH_SERVICE_H_

#include <chrono>

#include "common/credentials.h"
#include "common/thread_pool.h"
#include "parley/internal/v1/storage.grpc.pb.h"
#include "parley/v1/parley.grpc.pb.h"
#include "services/gateway/token_authenticator.h"

namespace parley::gateway {

struct AuthOptions {
  std::chrono::seconds token_ttl{30 * 24 * 3600};
  PasswordHashCost hash_cost;
  std::chrono::milliseconds storage_timeout{5000};
};

class AuthServiceImpl final : public parley::v1::AuthService::CallbackService {
 public:
  AuthServiceImpl(AuthOptions options,
                  ::parley::internal::v1::StorageService::StubInterface* storage,
                  TokenAuthenticator* auth, ThreadPool* hash_pool);

  grpc::ServerUnaryReactor* Register(grpc::CallbackServerContext* ctx,
                                     const parley::v1::RegisterRequest* req,
                                     parley::v1::RegisterResponse* resp) override;
  grpc::ServerUnaryReactor* Login(grpc::CallbackServerContext* ctx,
                                  const parley::v1::LoginRequest* req,
                                  parley::v1::LoginResponse* resp) override;

 private:
  // Issues and stores a new token for `user_id`.
  absl::Status IssueToken(int64_t user_id, std::string* token,
                          google::protobuf::Timestamp* expire_time);

  const AuthOptions options_;
  ::parley::internal::v1::StorageService::StubInterface* const storage_;
  TokenAuthenticator* const auth_;
  ThreadPool* const hash_pool_;
};

}  // namespace parley::gateway

#endif  // PARLEY_SERVICES_GATEWAY_AUTH_SERVICE_H_
