#include <doctest/doctest.h>
#include <openssl/ssl.h>

#include <hookctl/receive/tls.hpp>

#include "../temp_dir.hpp"
#include "../tls_material.hpp"

using namespace hookctl;
using hookctl::testing::TempDir;

TEST_CASE("receive::subject_allowed matches shell patterns against the subject and each SAN") {
    receive::ClientIdentity id{"CN=billing-7,O=Example Corp",
                               {"DNS:billing.internal.example", "URI:spiffe://example/billing"}};
    CHECK(receive::subject_allowed({}, id));
    CHECK(receive::subject_allowed({"CN=billing-*,O=Example Corp"}, id));
    CHECK(receive::subject_allowed({"CN=other", "DNS:*.internal.example"}, id));
    CHECK(receive::subject_allowed({"URI:spiffe://example/billing"}, id));
    // Whole-string matches only: a pattern for the CN alone does not match the whole subject.
    CHECK_FALSE(receive::subject_allowed({"CN=billing-7"}, id));
    CHECK_FALSE(receive::subject_allowed({"DNS:billing"}, id));
    CHECK_FALSE(receive::subject_allowed({"CN=other,O=Example Corp"}, id));

    CHECK(id.text() == "CN=billing-7,O=Example Corp");
    receive::ClientIdentity san_only{"", {"URI:spiffe://example/billing"}};
    CHECK(san_only.text() == "URI:spiffe://example/billing");
}

TEST_CASE("receive::TlsServer loads its files, keeps the old context on a bad reload") {
    TempDir dir("hookctl-tls-server");
    auto ca_key = testing::new_key();
    auto ca = testing::new_cert(ca_key.get(), "test CA", nullptr, nullptr, "", -1, 30, true);
    auto key = testing::new_key();
    auto cert = testing::new_cert(key.get(), "127.0.0.1", ca.get(), ca_key.get(), "IP:127.0.0.1");
    testing::write_file(dir.file("server.pem"), testing::cert_pem(cert.get()));
    testing::write_file(dir.file("server.key"), testing::key_pem(key.get()));
    testing::write_file(dir.file("ca.pem"), testing::cert_pem(ca.get()));

    receive::TlsServerOptions options{
        dir.file("server.pem"), dir.file("server.key"), dir.file("ca.pem"), {"CN=client-*"}};
    auto server = receive::TlsServer::create(options);
    REQUIRE(server);
    CHECK((*server)->requires_client_cert());
    CHECK((*server)->files() == std::vector<std::string>{dir.file("server.pem"),
                                                         dir.file("server.key"),
                                                         dir.file("ca.pem")});
    auto first = (*server)->current();
    REQUIRE(first);
    CHECK(SSL_CTX_get_verify_mode(first.get()) ==
          (SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT));
    CHECK(SSL_CTX_get_min_proto_version(first.get()) == TLS1_2_VERSION);

    // A new certificate for another key, written before its key: the pair does not match yet.
    auto new_key = testing::new_key();
    auto new_cert =
        testing::new_cert(new_key.get(), "127.0.0.1", ca.get(), ca_key.get(), "IP:127.0.0.1");
    testing::write_file(dir.file("server.pem"), testing::cert_pem(new_cert.get()));
    std::vector<std::pair<std::string, bool>> notices;
    auto notice = [&](std::string_view message, bool warning) {
        notices.emplace_back(std::string(message), warning);
    };
    (*server)->reload_and_report("test", notice);
    REQUIRE(notices.size() == 1);
    CHECK(notices[0].second);
    CHECK(notices[0].first.starts_with("test: TLS certificates not reloaded, keeping the current"));
    CAPTURE(notices[0].first);
    CHECK(notices[0].first.find("does not match") != std::string::npos);
    CHECK((*server)->current() == first);

    testing::write_file(dir.file("server.key"), testing::key_pem(new_key.get()));
    (*server)->reload_and_report("test", notice);
    REQUIRE(notices.size() == 2);
    CHECK_FALSE(notices[1].second);
    auto second = (*server)->current();
    CHECK(second != first);
    CHECK(X509_cmp(SSL_CTX_get0_certificate(second.get()), new_cert.get()) == 0);
    // A context a connection still holds outlives the reload.
    CHECK(X509_cmp(SSL_CTX_get0_certificate(first.get()), cert.get()) == 0);

    testing::write_file(dir.file("ca.pem"), "garbage\n");
    auto reloaded = (*server)->reload();
    REQUIRE_FALSE(reloaded);
    CHECK(reloaded.error().message.starts_with("--tls-client-ca " + dir.file("ca.pem")));
    CHECK((*server)->current() == second);
}

TEST_CASE("receive::TlsServer::create names the flag and file that cannot be used") {
    TempDir dir("hookctl-tls-server");
    auto key = testing::new_key();
    auto cert = testing::new_cert(key.get(), "127.0.0.1");
    testing::write_file(dir.file("server.pem"), testing::cert_pem(cert.get()));
    testing::write_file(dir.file("server.key"), testing::key_pem(key.get()));
    auto missing =
        receive::TlsServer::create({dir.file("nope.pem"), dir.file("server.key"), "", {}});
    REQUIRE_FALSE(missing);
    CHECK(missing.error().code == ExitCode::usage);
    CHECK(missing.error().message.starts_with("--tls-cert " + dir.file("nope.pem")));
    auto half = receive::TlsServer::create({dir.file("server.pem"), "", "", {}});
    REQUIRE_FALSE(half);
    CHECK(half.error().message == "TLS needs both --tls-cert FILE and --tls-key FILE");
    auto no_ca = receive::TlsServer::create(
        {dir.file("server.pem"), dir.file("server.key"), dir.file("nope-ca.pem"), {}});
    REQUIRE_FALSE(no_ca);
    CHECK(no_ca.error().message.starts_with("--tls-client-ca " + dir.file("nope-ca.pem")));
    auto plain =
        receive::TlsServer::create({dir.file("server.pem"), dir.file("server.key"), "", {}});
    REQUIRE(plain);
    CHECK_FALSE((*plain)->requires_client_cert());
    CHECK(SSL_CTX_get_verify_mode((*plain)->current().get()) == SSL_VERIFY_NONE);
}
