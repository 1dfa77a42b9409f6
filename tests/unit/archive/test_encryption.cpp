#include <cstdint>
#include <string>
#include <vector>

#include <SQLiteCpp/SQLiteCpp.h>
#include <doctest/doctest.h>

#include <hookctl/archive/archive.hpp>
#include <hookctl/archive/body_cipher.hpp>
#include <hookctl/archive/encryption.hpp>
#include <hookctl/archive/rekey.hpp>
#include <hookctl/keys/archive_key.hpp>

#include "../temp_dir.hpp"

#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

using namespace hookctl;
using namespace hookctl::archive;

namespace {

using testing::TempDir;

// A key of 32 bytes all `fill` (64 hex digits).
keys::ArchiveKey key_of(char fill) {
    const char hex[] = "0123456789abcdef";
    std::string text;
    for (int i = 0; i < 32; ++i) {
        text += hex[(static_cast<unsigned char>(fill) >> 4) & 0xf];
        text += hex[static_cast<unsigned char>(fill) & 0xf];
    }
    auto key = keys::decode_archive_key(text, "test");
    REQUIRE(key);
    return std::move(*key);
}

std::shared_ptr<const BodyCipher> cipher_of(std::vector<char> fills) {
    std::vector<keys::ArchiveKey> keys;
    for (char f : fills) {
        keys.push_back(key_of(f));
    }
    auto cipher = BodyCipher::make(std::move(keys));
    REQUIRE(cipher);
    return *cipher;
}

NewEvent make_event(std::string id, std::string body, std::optional<std::string> mime = {}) {
    NewEvent e;
    e.event_id = std::move(id);
    e.received_at_ms = 1000;
    e.org_id = "org_1";
    e.body = std::move(body);
    e.raw_mime = std::move(mime);
    e.source = "test";
    return e;
}

std::unique_ptr<Store> open_with(const std::string& path,
                                 std::shared_ptr<const BodyCipher> cipher) {
    OpenOptions options;
    options.cipher = std::move(cipher);
    auto archive = archive::open(path, options);
    REQUIRE(archive);
    return std::move(*archive);
}

void insert(Store& archive, std::vector<NewEvent> events) {
    auto done = archive.insert_events(events);
    REQUIRE(done);
}

std::string body_of(Store& archive, const std::string& id) {
    auto e = archive.get_event(id);
    REQUIRE(e);
    REQUIRE(e->has_value());
    return (*e)->body;
}

// Every byte of the file and its WAL, for grepping.
std::string file_bytes(const std::string& path) {
    std::string out;
    for (const auto& p : {path, path + "-wal"}) {
        std::FILE* f = std::fopen(p.c_str(), "rb");
        if (f == nullptr) {
            continue;
        }
        char buf[65536];
        std::size_t n = 0;
        while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) {
            out.append(buf, n);
        }
        std::fclose(f);
    }
    return out;
}

} // namespace

TEST_CASE("archive::BodyCipher seals with a fresh nonce and opens only the same field and event") {
    auto cipher = cipher_of({'a'});
    auto one = cipher->seal("secret body", "body", "evt_1");
    auto two = cipher->seal("secret body", "body", "evt_1");
    REQUIRE(one);
    REQUIRE(two);
    CHECK(*one != *two);
    CHECK(one->size() == std::string("secret body").size() + k_sealed_overhead);
    CHECK(one->find("secret body") == std::string::npos);
    CHECK(sealed_key_id(*one) == cipher->write_key_id());

    auto opened = cipher->open(*one, "body", "evt_1");
    REQUIRE(opened);
    CHECK(*opened == "secret body");

    auto other_event = cipher->open(*one, "body", "evt_2");
    REQUIRE_FALSE(other_event);
    CHECK(other_event.error().code == ExitCode::environment);
    CHECK(other_event.error().message.find("failed authentication") != std::string::npos);
    CHECK_FALSE(cipher->open(*one, "raw_mime", "evt_1"));

    std::string altered = *one;
    altered[altered.size() / 2] ^= 1;
    CHECK_FALSE(cipher->open(altered, "body", "evt_1"));

    auto other_key = cipher_of({'b'})->open(*one, "body", "evt_1");
    REQUIRE_FALSE(other_key);
    CHECK(other_key.error().message.find(cipher->write_key_id()) != std::string::npos);
}

TEST_CASE("archive::BodyCipher compresses a value before sealing when that is shorter") {
    auto cipher = cipher_of({'a'});
    // A JSON body of about 2 KiB, as listen stores them: repetitive, so zstd halves it at least.
    std::string json =
        R"({"event_id":"evt_1","subject":"Quarterly report","from":"a@example.com",)";
    for (int i = 0; json.size() < 2048; ++i) {
        json += R"("line_)" + std::to_string(i) + R"(":"the quick brown fox jumps over it",)";
    }
    json += R"("end":true})";
    auto sealed = cipher->seal(json, "body", "evt_1");
    REQUIRE(sealed);
    CHECK(static_cast<unsigned char>((*sealed)[4]) == 2);
    CHECK(sealed->size() < json.size() / 2);
    CHECK(is_sealed(*sealed));
    CHECK(sealed_key_id(*sealed) == cipher->write_key_id());
    auto opened = cipher->open(*sealed, "body", "evt_1");
    REQUIRE(opened);
    CHECK(*opened == json);

    SUBCASE("the version byte is authenticated: a version-2 value relabelled 1 fails") {
        std::string relabelled = *sealed;
        relabelled[4] = 1;
        auto r = cipher->open(relabelled, "body", "evt_1");
        REQUIRE_FALSE(r);
        CHECK(r.error().code == ExitCode::environment);
        CHECK(r.error().message.find("failed authentication") != std::string::npos);
    }
    SUBCASE("a value zstd cannot shorten is sealed as it is (version 1)") {
        std::string noise;
        std::uint64_t x = 0x9e3779b97f4a7c15ULL;
        for (int i = 0; i < 2048; ++i) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            noise += static_cast<char>(x & 0xff);
        }
        auto plain = cipher->seal(noise, "body", "evt_1");
        REQUIRE(plain);
        CHECK(static_cast<unsigned char>((*plain)[4]) == 1);
        CHECK(plain->size() == noise.size() + k_sealed_overhead);
        auto back = cipher->open(*plain, "body", "evt_1");
        REQUIRE(back);
        CHECK(*back == noise);
    }
    SUBCASE("a short value is sealed as it is") {
        auto short_value = cipher->seal(std::string(100, 'x'), "body", "evt_1");
        REQUIRE(short_value);
        CHECK(static_cast<unsigned char>((*short_value)[4]) == 1);
    }
    SUBCASE("an unknown format version is not a sealed value") {
        std::string future = *sealed;
        future[4] = 3;
        CHECK_FALSE(is_sealed(future));
        CHECK_FALSE(cipher->open(future, "body", "evt_1"));
    }
}

TEST_CASE("archive::Store with a key stores bodies and raw MIME sealed, and reads them back") {
    TempDir dir;
    auto path = dir.file("a.db");
    auto cipher = cipher_of({'a'});
    {
        auto archive = open_with(path, cipher);
        insert(*archive, {make_event("evt_1", R"({"subject":"Quarterly PLAINSUBJECT"})",
                                     "From: PLAINADDR@example.org\r\n\r\nPLAINBODY\r\n")});
        CHECK(archive->encryption().encrypted);
        CHECK(archive->encryption().key_ids == std::vector<std::string>{cipher->write_key_id()});
        auto e = archive->get_event("evt_1");
        REQUIRE(e);
        CHECK((*e)->body == R"({"subject":"Quarterly PLAINSUBJECT"})");
        CHECK((*e)->raw_mime == "From: PLAINADDR@example.org\r\n\r\nPLAINBODY\r\n");
        auto bytes = file_bytes(path);
        CHECK(bytes.find("PLAINSUBJECT") == std::string::npos);
        CHECK(bytes.find("PLAINADDR") == std::string::npos);
        CHECK(bytes.find("PLAINBODY") == std::string::npos);
    }
    SUBCASE("without a key: metadata reads, bodies fail with exit 4, writes are refused") {
        auto archive = open_with(path, nullptr);
        auto count =
            archive->for_each_event({.with_body = false}, [](const Event&) { return true; });
        CHECK(count);
        auto e = archive->get_event("evt_1");
        REQUIRE_FALSE(e);
        CHECK(e.error().code == ExitCode::environment);
        CHECK(e.error().message.find("--archive-key") != std::string::npos);
        std::vector<NewEvent> more{make_event("evt_2", "in clear")};
        auto refused = archive->insert_events(more);
        REQUIRE_FALSE(refused);
        CHECK(refused.error().code == ExitCode::environment);
        CHECK(file_bytes(path).find("in clear") == std::string::npos);
    }
    SUBCASE("a wrong key is refused at open with exit 4") {
        OpenOptions options;
        options.cipher = cipher_of({'b'});
        auto archive = archive::open(path, options);
        REQUIRE_FALSE(archive);
        CHECK(archive.error().code == ExitCode::environment);
    }
}

TEST_CASE("archive::Store a sealed body moved to another row fails authentication") {
    TempDir dir;
    auto path = dir.file("a.db");
    auto cipher = cipher_of({'a'});
    {
        auto archive = open_with(path, cipher);
        insert(*archive, {make_event("evt_1", "body one"), make_event("evt_2", "body two")});
    }
    {
        SQLite::Database raw(path, SQLite::OPEN_READWRITE);
        raw.exec("UPDATE event_bodies SET body = (SELECT body FROM event_bodies WHERE seq = 1) "
                 "WHERE seq = 2");
    }
    auto archive = open_with(path, cipher);
    CHECK(body_of(*archive, "evt_1") == "body one");
    auto moved = archive->get_event("evt_2");
    REQUIRE_FALSE(moved);
    CHECK(moved.error().code == ExitCode::environment);
    CHECK(moved.error().message.find("failed authentication") != std::string::npos);
}

TEST_CASE("archive::Store refuses a key for an archive that holds bodies in clear") {
    TempDir dir;
    auto path = dir.file("a.db");
    {
        auto archive = open_with(path, nullptr);
        insert(*archive, {make_event("evt_1", "clear")});
    }
    auto archive = open_with(path, cipher_of({'a'}));
    std::vector<NewEvent> more{make_event("evt_2", "would be sealed")};
    auto refused = archive->insert_events(more);
    REQUIRE_FALSE(refused);
    CHECK(refused.error().code == ExitCode::environment);
    CHECK(refused.error().message.find("events rekey") != std::string::npos);
    CHECK_FALSE(archive->encryption().encrypted);
}

TEST_CASE("archive::rekey encrypts a clear archive, then moves it to a new key, resumably") {
    TempDir dir;
    auto path = dir.file("a.db");
    {
        auto archive = open_with(path, nullptr);
        std::vector<NewEvent> events;
        for (int i = 0; i < 10; ++i) {
            events.push_back(make_event("evt_" + std::to_string(i),
                                        "PLAIN body " + std::to_string(i),
                                        "PLAIN mime " + std::to_string(i)));
        }
        insert(*archive, events);
    }
    auto a = cipher_of({'a'});
    {
        auto archive = open_with(path, a);
        auto done = rekey(*archive, {.batch_rows = 3});
        REQUIRE(done);
        CHECK(done->finished);
        CHECK(done->encrypting);
        CHECK(done->resealed == 20);
        CHECK(archive->encryption().key_ids == std::vector<std::string>{a->write_key_id()});
        CHECK_FALSE(archive->encryption().rekey);
        CHECK(body_of(*archive, "evt_7") == "PLAIN body 7");
        REQUIRE(archive->checkpoint());
    }
    CHECK(file_bytes(path).find("PLAIN body") == std::string::npos);

    // To key b, stopped after the first batch: both keys are recorded and every value opens
    // with the pair; a second run finishes the job.
    auto b_then_a = cipher_of({'b', 'a'});
    {
        auto archive = open_with(path, b_then_a);
        int batches = 0;
        auto stopped = rekey(*archive, {.batch_rows = 4, .progress = [&](const RekeyProgress&) {
                                            return ++batches < 1;
                                        }});
        REQUIRE(stopped);
        CHECK_FALSE(stopped->finished);
        CHECK(stopped->resealed == 8);
        REQUIRE(archive->encryption().rekey);
        CHECK(archive->encryption().key_ids.size() == 2);
        for (int i = 0; i < 10; ++i) {
            CHECK(body_of(*archive, "evt_" + std::to_string(i)) ==
                  "PLAIN body " + std::to_string(i));
        }
    }
    {
        // The old key alone no longer opens the moved rows.
        auto archive = open_with(path, a);
        CHECK_FALSE(archive->get_event("evt_0"));
        CHECK(body_of(*archive, "evt_9") == "PLAIN body 9");
    }
    {
        auto archive = open_with(path, b_then_a);
        auto done = rekey(*archive, {.batch_rows = 4});
        REQUIRE(done);
        CHECK(done->finished);
        CHECK(done->resumed);
        CHECK(done->resealed == 12);
        CHECK(done->unchanged == 0);
        CHECK(done->retired == std::vector<std::string>{a->write_key_id()});
    }
    auto b = cipher_of({'b'});
    auto archive = open_with(path, b);
    CHECK(archive->encryption().key_ids == std::vector<std::string>{b->write_key_id()});
    for (int i = 0; i < 10; ++i) {
        auto e = archive->get_event("evt_" + std::to_string(i));
        REQUIRE(e);
        CHECK((*e)->raw_mime == "PLAIN mime " + std::to_string(i));
    }
    OpenOptions old_only;
    old_only.cipher = a;
    auto refused = archive::open(path, old_only);
    REQUIRE_FALSE(refused);
    CHECK(refused.error().code == ExitCode::environment);
}

TEST_CASE("archive::rekey without the old key changes nothing (exit 2)") {
    TempDir dir;
    auto path = dir.file("a.db");
    {
        auto archive = open_with(path, cipher_of({'a'}));
        insert(*archive, {make_event("evt_1", "one")});
    }
    // A cipher holding b only cannot open the archive; with c as the write key and b as the
    // old one, the archive's key a is missing.
    OpenOptions options;
    options.cipher = cipher_of({'c', 'b'});
    auto refused = archive::open(path, options);
    REQUIRE_FALSE(refused);
    CHECK(refused.error().code == ExitCode::environment);
    auto archive = open_with(path, cipher_of({'a'}));
    CHECK(body_of(*archive, "evt_1") == "one");
}

TEST_CASE("archive::Store re-parses are stored beside the body, sealed like it") {
    TempDir dir;
    auto path = dir.file("a.db");
    auto archive = open_with(path, cipher_of({'a'}));
    insert(*archive, {make_event("evt_1", R"({"subject":"old"})")});
    std::vector<NewReparse> reparses{
        {"evt_1", "hookctl test", {"subject"}, R"({"subject":"NEWPARSE"})"}};
    auto versions = archive->add_reparses(reparses);
    REQUIRE(versions);
    CHECK(*versions == std::vector<std::int64_t>{1});
    versions = archive->add_reparses(reparses);
    REQUIRE(versions);
    CHECK(*versions == std::vector<std::int64_t>{2});
    auto stored = archive->reparses_of("evt_1");
    REQUIRE(stored);
    REQUIRE(stored->size() == 2);
    CHECK((*stored)[0].body == R"({"subject":"NEWPARSE"})");
    CHECK((*stored)[1].divergent == std::vector<std::string>{"subject"});
    CHECK(body_of(*archive, "evt_1") == R"({"subject":"old"})");
    REQUIRE(archive->checkpoint());
    CHECK(file_bytes(path).find("NEWPARSE") == std::string::npos);
    std::vector<NewReparse> unknown{{"evt_x", "", {}, "{}"}};
    auto missing = archive->add_reparses(unknown);
    REQUIRE_FALSE(missing);
    CHECK(missing.error().code == ExitCode::usage);
}
