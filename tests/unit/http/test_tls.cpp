#include <map>

#include <curl/curl.h>
#include <doctest/doctest.h>

#include <hookctl/http/tls.hpp>

#include "../temp_dir.hpp"
#include "../tls_material.hpp"

using namespace hookctl;
using hookctl::testing::TempDir;

namespace {

// An environment for resolve_tls_client: nothing set unless the test says so.
struct Env {
    std::map<std::string, std::string> values;
    std::function<std::optional<std::string>(const std::string&)> fn() const {
        return [this](const std::string& name) -> std::optional<std::string> {
            auto it = values.find(name);
            if (it == values.end()) {
                return std::nullopt;
            }
            return it->second;
        };
    }
};

bool contains(const std::string& text, std::string_view word) {
    return text.find(word) != std::string::npos;
}

// How the commands name their TLS flags (cmd/send.cpp): the names messages use for `flags`.
http::TlsSettingNames flag_names() {
    return {
        "--cacert", "--capath", "--cert", "--key", "--key-passphrase-env", "--key-passphrase-file"};
}

} // namespace

TEST_CASE("http::choose_trust: flags, then the target, then SSL_CERT_FILE/DIR, then the system") {
    http::TlsClientSpec flags;
    flags.names = flag_names();
    http::TlsClientSpec target;
    auto system = http::choose_trust(flags, target, "", "");
    CHECK_FALSE(system.ca_file);
    CHECK_FALSE(system.ca_path);
    CHECK(system.label == "the system trust store");

    // As OpenSSL reads them: each variable replaces only the default it names.
    auto env = http::choose_trust(flags, target, "/env/ca.pem", "");
    CHECK(env.ca_file == "/env/ca.pem");
    CHECK_FALSE(env.ca_path);
    CHECK(env.label == "SSL_CERT_FILE=/env/ca.pem (from the environment)");
    auto env_dir = http::choose_trust(flags, target, "", "/env/certs");
    CHECK_FALSE(env_dir.ca_file);
    CHECK(env_dir.ca_path == "/env/certs");

    // A target's CAs replace the system store entirely (an empty location is "none").
    target.ca_file = "/cfg/company-ca.pem";
    auto from_target = http::choose_trust(flags, target, "/env/ca.pem", "/env/certs");
    CHECK(from_target.ca_file == "/cfg/company-ca.pem");
    CHECK(from_target.ca_path == "");
    CHECK(from_target.label == "ca_file /cfg/company-ca.pem");

    // Flags win over the target as a group.
    flags.ca_path = "/flag/certs";
    auto from_flags = http::choose_trust(flags, target, "/env/ca.pem", "");
    CHECK(from_flags.ca_file == "");
    CHECK(from_flags.ca_path == "/flag/certs");
    CHECK(from_flags.label == "--capath /flag/certs");
}

TEST_CASE("http::describe_tls_failure names the problem and the setting that fixes it") {
    http::Trust system;
    system.label = "the system trust store";
    for (auto detail : {"SSL certificate problem: self-signed certificate",
                        "SSL certificate problem: unable to get local issuer certificate",
                        "SSL certificate problem: self-signed certificate in certificate chain"}) {
        auto f = http::describe_tls_failure(CURLE_PEER_FAILED_VERIFICATION, detail, system, false,
                                            flag_names());
        REQUIRE(f);
        CAPTURE(f->message);
        CHECK(f->permanent);
        CHECK(f->reason == "tls_error");
        CHECK(contains(f->message, "not trusted by the system trust store"));
        CHECK(contains(f->message, "--cacert FILE"));
        CHECK_FALSE(contains(f->message, "--insecure"));
    }
    http::Trust given{"/tmp/ca.pem", "", "--cacert /tmp/ca.pem"};
    auto wrong_ca = http::describe_tls_failure(
        CURLE_PEER_FAILED_VERIFICATION,
        "SSL certificate problem: unable to get local issuer certificate", given, false,
        flag_names());
    REQUIRE(wrong_ca);
    CHECK(contains(wrong_ca->message, "not trusted by --cacert /tmp/ca.pem"));
    CHECK(contains(wrong_ca->message, "the CA that signed the server's certificate"));

    auto host = http::describe_tls_failure(
        CURLE_PEER_FAILED_VERIFICATION,
        "SSL: no alternative certificate subject name matches target host name 'localhost'", system,
        false, flag_names());
    REQUIRE(host);
    CHECK(contains(host->message, "not valid for this host name"));
    CHECK_FALSE(contains(host->message, "--cacert"));

    auto expired = http::describe_tls_failure(CURLE_PEER_FAILED_VERIFICATION,
                                              "SSL certificate problem: certificate has expired",
                                              system, false, flag_names());
    REQUIRE(expired);
    CHECK(contains(expired->message, "has expired"));

    auto required = http::describe_tls_failure(
        CURLE_RECV_ERROR,
        "OpenSSL SSL_read: OpenSSL/3.0.19: error:0A00045C:SSL routines::tlsv13 alert certificate "
        "required, errno 0",
        system, false, flag_names());
    REQUIRE(required);
    CHECK(required->permanent);
    CHECK(contains(required->message, "requires a client certificate"));
    CHECK(contains(required->message, "--cert FILE --key FILE"));
    CHECK(contains(required->message, "(tlsv13 alert certificate required)"));

    auto refused = http::describe_tls_failure(
        CURLE_SSL_CONNECT_ERROR,
        "OpenSSL/3.0.19: error:0A000418:SSL routines::tlsv1 alert unknown ca", system, true,
        flag_names());
    REQUIRE(refused);
    CHECK(contains(refused->message, "refused the client certificate"));

    auto plain = http::describe_tls_failure(
        CURLE_SSL_CONNECT_ERROR,
        "OpenSSL/3.0.19: error:0A00010B:SSL routines::wrong version number", system, false,
        flag_names());
    REQUIRE(plain);
    CHECK(contains(plain->message, "http://"));

    auto other = http::describe_tls_failure(CURLE_SSL_CONNECT_ERROR, "OpenSSL: something else",
                                            system, true, flag_names());
    REQUIRE(other);
    CHECK_FALSE(other->permanent); // an unknown handshake failure may pass on a retry

    // The fixes name the settings as the caller does.
    http::TlsSettingNames keys{"ca_file", "ca_path", "client_cert", "client_key", "", ""};
    auto unreadable = http::describe_tls_failure(CURLE_SSL_CACERT_BADFILE, "SSL: cannot load",
                                                 system, false, keys);
    REQUIRE(unreadable);
    CHECK(
        contains(unreadable->message, "bundle with ca_file FILE or a directory with ca_path DIR"));
    auto no_cert =
        http::describe_tls_failure(CURLE_SSL_CERTPROBLEM, "SSL: bad", system, true, keys);
    REQUIRE(no_cert);
    CHECK(contains(no_cert->message, "check client_cert and client_key"));

    CHECK_FALSE(
        http::describe_tls_failure(CURLE_COULDNT_CONNECT, "refused", system, false, flag_names()));
    CHECK_FALSE(http::describe_tls_failure(CURLE_RECV_ERROR, "Connection reset by peer", system,
                                           false, flag_names()));
}

TEST_CASE("http::resolve_tls_client checks CA files and directories before anything is sent") {
    TempDir dir("hookctl-tls");
    Env env;
    auto key = testing::new_key();
    auto ca = testing::new_cert(key.get(), "test CA", nullptr, nullptr, "", -1, 30, true);
    testing::write_file(dir.file("ca.pem"), testing::cert_pem(ca.get()), 0644);
    testing::write_file(dir.file("empty.pem"), "not a certificate\n", 0644);

    http::TlsClientSpec flags;
    flags.names = flag_names();
    flags.ca_file = dir.file("ca.pem");
    auto ok = http::resolve_tls_client(flags, {}, "", env.fn());
    REQUIRE(ok);
    CHECK(ok->trust.ca_file == dir.file("ca.pem"));
    CHECK_FALSE(ok->client_cert);

    flags.ca_file = dir.file("empty.pem");
    auto empty = http::resolve_tls_client(flags, {}, "", env.fn());
    REQUIRE_FALSE(empty);
    CHECK(empty.error().code == ExitCode::usage);
    CHECK(empty.error().message.starts_with("--cacert " + dir.file("empty.pem") +
                                            ": no PEM certificate"));

    flags.ca_file = dir.file("missing.pem");
    auto missing = http::resolve_tls_client(flags, {}, "", env.fn());
    REQUIRE_FALSE(missing);
    CHECK(contains(missing.error().message, "--cacert"));

    http::TlsClientSpec target;
    target.ca_path = dir.file("nowhere");
    auto no_dir = http::resolve_tls_client({}, target, "staging", env.fn());
    REQUIRE_FALSE(no_dir);
    CHECK(no_dir.error().message.starts_with("ca_path of target 'staging'"));

    env.values["SSL_CERT_FILE"] = dir.file("ca.pem");
    auto from_env = http::resolve_tls_client({}, {}, "", env.fn());
    REQUIRE(from_env);
    CHECK(from_env->trust.ca_file == dir.file("ca.pem"));
}

TEST_CASE("http::resolve_tls_client loads a client certificate and treats its key as a secret") {
    TempDir dir("hookctl-tls");
    Env env;
    auto key = testing::new_key();
    auto cert = testing::new_cert(key.get(), "client-a");
    auto other_key = testing::new_key();
    testing::write_file(dir.file("client.pem"), testing::cert_pem(cert.get()), 0644);
    testing::write_file(dir.file("client.key"), testing::key_pem(key.get()), 0600);
    testing::write_file(dir.file("open.key"), testing::key_pem(key.get()), 0644);
    testing::write_file(dir.file("other.key"), testing::key_pem(other_key.get()), 0600);
    testing::write_file(dir.file("enc.key"), testing::key_pem(key.get(), "correct horse"), 0600);
    testing::write_file(dir.file("both.pem"),
                        testing::cert_pem(cert.get()) + testing::key_pem(key.get()), 0600);
    testing::write_file(dir.file("pass.txt"), "correct horse\n", 0600);

    http::TlsClientSpec flags;
    flags.names = flag_names();
    flags.cert = dir.file("client.pem");
    flags.key = dir.file("client.key");
    auto ok = http::resolve_tls_client(flags, {}, "", env.fn());
    REQUIRE(ok);
    REQUIRE(ok->client_cert);
    CHECK(ok->client_cert->subject == "CN=client-a,O=hookctl test");
    CHECK(ok->client_cert->key_passphrase.empty());

    SUBCASE("a key others can read is refused") {
        flags.key = dir.file("open.key");
        auto open = http::resolve_tls_client(flags, {}, "", env.fn());
        REQUIRE_FALSE(open);
        CHECK(open.error().code == ExitCode::usage);
        CHECK(contains(open.error().message, "permissions 0644 are too open"));
        CHECK(contains(open.error().message, "chmod 600"));
    }
    SUBCASE("a key that does not match the certificate is refused") {
        flags.key = dir.file("other.key");
        auto other = http::resolve_tls_client(flags, {}, "", env.fn());
        REQUIRE_FALSE(other);
        CHECK(contains(other.error().message, "does not match the certificate"));
    }
    SUBCASE("an encrypted key needs its passphrase, from a variable or a file") {
        flags.key = dir.file("enc.key");
        auto none = http::resolve_tls_client(flags, {}, "", env.fn());
        REQUIRE_FALSE(none);
        CHECK(contains(none.error().message, "is encrypted"));
        CHECK(contains(none.error().message, "--key-passphrase-env NAME"));

        flags.key_passphrase_env = "CLIENT_KEY_PASS";
        auto unset = http::resolve_tls_client(flags, {}, "", env.fn());
        REQUIRE_FALSE(unset);
        CHECK(contains(unset.error().message, "CLIENT_KEY_PASS"));

        env.values["CLIENT_KEY_PASS"] = "wrong horse";
        auto wrong = http::resolve_tls_client(flags, {}, "", env.fn());
        REQUIRE_FALSE(wrong);
        CHECK(contains(wrong.error().message, "cannot decrypt"));
        CHECK_FALSE(contains(wrong.error().message, "wrong horse"));

        env.values["CLIENT_KEY_PASS"] = "correct horse";
        auto decrypted = http::resolve_tls_client(flags, {}, "", env.fn());
        REQUIRE(decrypted);
        CHECK(decrypted->client_cert->key_passphrase.view() == "correct horse");

        flags.key_passphrase_env.clear();
        flags.key_passphrase_file = dir.file("pass.txt");
        auto from_file = http::resolve_tls_client(flags, {}, "", env.fn());
        REQUIRE(from_file);
        CHECK(from_file->client_cert->key_passphrase.view() == "correct horse");
    }
    SUBCASE("the key may sit in the certificate file, which is then a secret too") {
        flags.cert = dir.file("both.pem");
        flags.key.clear();
        auto both = http::resolve_tls_client(flags, {}, "", env.fn());
        REQUIRE(both);
        CHECK(both->client_cert->subject == "CN=client-a,O=hookctl test");
        flags.cert = dir.file("client.pem"); // 0644 and no key in it
        auto no_key = http::resolve_tls_client(flags, {}, "", env.fn());
        REQUIRE_FALSE(no_key);
        CHECK(contains(no_key.error().message, "too open"));
    }
    SUBCASE("a key without a certificate is a usage error; target settings name their keys") {
        http::TlsClientSpec key_only;
        key_only.names = flag_names();
        key_only.key = dir.file("client.key");
        auto alone = http::resolve_tls_client(key_only, {}, "", env.fn());
        REQUIRE_FALSE(alone);
        CHECK(contains(alone.error().message, "without --cert"));

        http::TlsClientSpec target;
        target.cert = dir.file("client.pem");
        target.key = dir.file("open.key");
        auto from_target = http::resolve_tls_client({}, target, "staging", env.fn());
        REQUIRE_FALSE(from_target);
        CHECK(from_target.error().message.starts_with("client_key of target 'staging'"));
    }
}
