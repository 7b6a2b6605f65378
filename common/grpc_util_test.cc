#include "common/grpc_util.h"

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace parley {
namespace {

using ::testing::HasSubstr;

// Only the files' form is checked when loading; the handshake tests with
// real certificates are in tests/e2e/tls_test.cc.
class TlsCredentialsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/parley-tls-unit-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
    cert_ = Write("cert.pem",
                  "-----BEGIN CERTIFICATE-----\nAAAA\n"
                  "-----END CERTIFICATE-----\n");
    key_ = Write("key.pem",
                 "-----BEGIN PRIVATE KEY-----\nAAAA\n"
                 "-----END PRIVATE KEY-----\n");
  }
  void TearDown() override {
    std::system(("rm -rf '" + dir_ + "'").c_str());
  }
  std::string Write(const std::string& name, const std::string& text) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path) << text;
    return path;
  }
  absl::Status Load(const std::string& ca, const std::string& cert,
                    const std::string& key, TlsRole role,
                    const std::string& prefix = "tls") {
    TlsFiles files;
    files.ca = ca;
    files.cert = cert;
    files.key = key;
    files.flag_prefix = prefix;
    return TlsCredentials::Load(files, role).status();
  }

  std::string dir_, cert_, key_;
};

TEST_F(TlsCredentialsTest, NoFilesIsPlaintext) {
  for (TlsRole role : {TlsRole::kServer, TlsRole::kClient, TlsRole::kPeer}) {
    auto tls = TlsCredentials::Load(TlsFiles(), role);
    ASSERT_TRUE(tls.ok()) << tls.status();
    EXPECT_FALSE(tls->enabled());
  }
}

TEST_F(TlsCredentialsTest, FileSetsThatFitTheRole) {
  EXPECT_TRUE(Load("", cert_, key_, TlsRole::kServer).ok());
  EXPECT_TRUE(Load(cert_, cert_, key_, TlsRole::kServer).ok());
  EXPECT_TRUE(Load(cert_, "", "", TlsRole::kClient).ok());
  EXPECT_TRUE(Load(cert_, cert_, key_, TlsRole::kClient).ok());
  EXPECT_TRUE(Load(cert_, cert_, key_, TlsRole::kPeer).ok());
  auto tls = TlsCredentials::LoadClient(cert_);
  ASSERT_TRUE(tls.ok());
  EXPECT_TRUE(tls->enabled());
}

TEST_F(TlsCredentialsTest, CertificateAndKeyGoTogether) {
  absl::Status s = Load("", cert_, "", TlsRole::kServer);
  EXPECT_TRUE(absl::IsInvalidArgument(s));
  EXPECT_THAT(s.message(),
              HasSubstr("--tls_cert_file is set but --tls_key_file is not"));
  s = Load("", "", key_, TlsRole::kServer, "internal_tls");
  EXPECT_THAT(s.message(), HasSubstr("--internal_tls_key_file is set but "
                                     "--internal_tls_cert_file is not"));
}

TEST_F(TlsCredentialsTest, FileSetsThatDoNotFitTheRole) {
  EXPECT_THAT(Load(cert_, "", "", TlsRole::kServer).message(),
              HasSubstr("--tls_ca_file needs --tls_cert_file"));
  EXPECT_THAT(Load("", cert_, key_, TlsRole::kClient).message(),
              HasSubstr("--tls_cert_file needs --tls_ca_file"));
  EXPECT_THAT(Load(cert_, "", "", TlsRole::kPeer, "internal_tls").message(),
              HasSubstr("mutual TLS needs all of --internal_tls_ca_file"));
  EXPECT_FALSE(Load("", cert_, key_, TlsRole::kPeer).ok());
}

TEST_F(TlsCredentialsTest, BadFilesAreNamed) {
  const std::string missing = dir_ + "/missing.pem";
  absl::Status s = Load(missing, "", "", TlsRole::kClient);
  EXPECT_TRUE(absl::IsInvalidArgument(s));
  EXPECT_THAT(s.message(), HasSubstr("--tls_ca_file: cannot read " + missing));
  // A key where the certificate belongs, and the other way round.
  EXPECT_THAT(Load(key_, "", "", TlsRole::kClient).message(),
              HasSubstr("holds no PEM certificate"));
  EXPECT_THAT(Load("", cert_, cert_, TlsRole::kServer).message(),
              HasSubstr("--tls_key_file: " + cert_ + " holds no PEM private key"));
  const std::string encrypted = Write(
      "enc.pem",
      "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n"
      "-----END ENCRYPTED PRIVATE KEY-----\n");
  EXPECT_THAT(Load("", cert_, encrypted, TlsRole::kServer).message(),
              HasSubstr("is encrypted"));
  EXPECT_THAT(Load(Write("empty.pem", ""), "", "", TlsRole::kClient).message(),
              HasSubstr("holds no PEM certificate"));
}

}  // namespace
}  // namespace parley
