#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include <hookctl/mime/gmime_ptr.hpp>
#include <hookctl/mime/parse.hpp>
#include <hookctl/util/encoding.hpp>
#include <hookctl/util/file.hpp>

using namespace hookctl;

namespace {

mime::ParseOptions fixed_options() {
    mime::ParseOptions options;
    options.org_id = "org_1";
    options.received_at = "2026-01-01T00:00:00Z";
    options.trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    return options;
}

} // namespace

TEST_CASE("mime::event_id_for is evt_ and 24 hex digits of the SHA-256") {
    std::string raw = "Subject: x\n\nbody\n";
    std::string id = mime::event_id_for(raw);
    CHECK(id == "evt_" + util::hex_encode(util::sha256(raw)).substr(0, 24));
    CHECK(id.size() == 28);
    CHECK(mime::event_id_for(raw + " ") != id);
}

TEST_CASE("mime::parse_message fills the schema_version 1 event") {
    std::string raw = "From: \"A\" <a@example.com>\nTo: b@example.com\n"
                      "Subject: =?utf-8?b?w6nDqA==?=\nMessage-ID: <m1@x>\n\nhello\n";
    auto event = mime::parse_message(raw, fixed_options());
    REQUIRE(event.has_value());
    const auto& doc = *event;
    CHECK(doc["schema_version"] == "1");
    CHECK(doc["event_id"] == mime::event_id_for(raw));
    CHECK(doc["org_id"] == "org_1");
    CHECK(doc["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736");
    CHECK(doc["subject"] == "éè");
    CHECK(doc["from"]["name"] == "A");
    CHECK(doc["to"][0]["address"] == "b@example.com");
    CHECK(doc["message_id"] == "m1@x");
    CHECK(doc["text"] == "hello\n");
    CHECK(doc["html"].is_null());
    CHECK(doc["raw_mime"]["size"] == raw.size());
    // Deterministic apart from nothing: the same input and options give the same JSON.
    CHECK(mime::parse_message(raw, fixed_options())->dump() == doc.dump());
}

TEST_CASE("mime::parse_message decodes raw 8-bit bytes inside a Q word with the word's charset") {
    // Some senders put the raw latin-1 byte in the word instead of =FC; converting the header
    // to UTF-8 first and then decoding the word as iso-8859-1 would give "MÃ¼ller".
    std::string raw = "From: a@example.com\r\nTo: Heinz =?iso-8859-1?Q?M\xfcller?= "
                      "<mueller@example.com>, =?utf-8?q?=C3=A9t=C3=A9?= <e@example.com>\r\n"
                      "Subject: =?iso-8859-1?Q?Fr\xf6sche?= und =?iso-8859-1?Q?Hasen?=\r\n"
                      "\r\nbody\r\n";
    auto event = mime::parse_message(raw, fixed_options());
    REQUIRE(event.has_value());
    const auto& doc = *event;
    REQUIRE(doc["to"].size() == 2);
    CHECK(doc["to"][0]["name"] == "Heinz M\u00fcller");
    CHECK(doc["to"][0]["address"] == "mueller@example.com");
    CHECK(doc["to"][1]["name"] == "\u00e9t\u00e9");
    CHECK(doc["subject"] == "Fr\u00f6sche und Hasen");
    bool header_seen = false;
    for (const auto& h : doc["headers"]) {
        if (h[0] == "Subject") {
            CHECK(h[1] == "Fr\u00f6sche und Hasen");
            header_seen = true;
        }
    }
    CHECK(header_seen);
}

TEST_CASE("mime::parse_message skips lines of spaces before the headers, not an empty line") {
    std::string headers = "From: a@example.com\r\nSubject: hi\r\n\r\nbody\r\n";
    auto padded =
        mime::parse_message(std::string(40, ' ') + "\r\n \t\n" + headers, fixed_options());
    REQUIRE(padded.has_value());
    CHECK((*padded)["subject"] == "hi");
    CHECK((*padded)["warnings"][0]["code"] == "leading_blank_lines");
    // An empty first line ends an empty header block: what follows is the body.
    auto empty_first = mime::parse_message("\r\n" + headers, fixed_options());
    REQUIRE(empty_first.has_value());
    CHECK((*empty_first)["subject"].is_null());
}

TEST_CASE("mime::parse_message: a leading attachment does not keep the text after it out of "
          "the body") {
    std::string raw = "From: a@example.com\nContent-Type: multipart/mixed; boundary=B\n\n"
                      "--B\nContent-Type: text/plain; name=file.txt\n"
                      "Content-Disposition: attachment; filename=file.txt\n\nfile contents\n"
                      "--B\nContent-Type: text/plain; charset=us-ascii\n\nthe body\n--B--\n";
    auto event = mime::parse_message(raw, fixed_options());
    REQUIRE(event.has_value());
    CHECK((*event)["text"] == "the body"); // the newline before a boundary belongs to it
    REQUIRE((*event)["attachments"].size() == 1);
    CHECK((*event)["attachments"][0]["filename"] == "file.txt");
}

TEST_CASE("mime::parse_message rejects a malformed received_at") {
    auto options = fixed_options();
    options.received_at = "yesterday";
    auto event = mime::parse_message("Subject: x\n\n", options);
    REQUIRE_FALSE(event.has_value());
    CHECK(event.error().code == ExitCode::usage);
}

TEST_CASE("mime::for_each_message splits an mbox and labels each message") {
    auto dir = std::filesystem::temp_directory_path() / "hookctl-mime-unit";
    std::filesystem::create_directories(dir);
    std::string mbox;
    for (int i = 0; i < 3; ++i) {
        mbox += "From x@example.com Thu Jan  1 00:00:00 2026\nSubject: m" + std::to_string(i) +
                "\n\nbody " + std::to_string(i) + "\n\n";
    }
    std::string path = (dir / "box").string();
    REQUIRE(util::write_file_atomic(path, mbox, 0600).has_value());
    std::vector<std::string> labels;
    std::vector<std::string> subjects;
    auto status = mime::for_each_message(
        path, [&](std::string_view raw, const std::string& label) -> Result<void> {
            labels.push_back(label);
            auto event = mime::parse_message(raw, fixed_options());
            REQUIRE(event.has_value());
            subjects.push_back((*event)["subject"].get<std::string>());
            return {};
        });
    CHECK(status.has_value());
    CHECK(labels == std::vector<std::string>{path + "#1", path + "#2", path + "#3"});
    CHECK(subjects == std::vector<std::string>{"m0", "m1", "m2"});
    std::filesystem::remove_all(dir);
}

TEST_CASE("mime::parse_message survives every kept fuzz regression input") {
    std::filesystem::path dir = HOOKCTL_FUZZ_REGRESSIONS;
    int replayed = 0;
    for (const auto& entry : std::filesystem::directory_iterator(dir)) {
        if (!entry.is_regular_file() || entry.path().filename().string().starts_with(".")) {
            continue;
        }
        auto raw = util::read_file(entry.path().string());
        REQUIRE(raw.has_value());
        auto event = mime::parse_message(*raw, fixed_options());
        if (event) {
            CHECK_NOTHROW((void)event->dump());
        }
        ++replayed;
    }
    // The folder keeps hand-made hostile seeds besides any crash the fuzzer finds: a test over an
    // empty folder would pass whatever the parser does.
    REQUIRE_MESSAGE(replayed >= 3, "tests/fuzz/regressions/ holds "
                                       << replayed << " inputs; its seeds are missing");
    MESSAGE("replayed " << replayed << " fuzz regression inputs");
}

TEST_CASE("mime::parse_message survives every file of the shared corpus") {
    const char* shared = std::getenv("HOOKCTL_SHARED");
    std::filesystem::path corpus =
        std::filesystem::path(shared != nullptr ? shared : "../shared") / "corpus";
    // Missing corpus fails: skipping here would let CI pass without parsing a single message.
    REQUIRE_MESSAGE(std::filesystem::is_directory(corpus),
                    "no corpus at " << corpus.string()
                                    << ": set HOOKCTL_SHARED to the folder holding corpus/");
    int parsed = 0;
    for (const auto& entry : std::filesystem::recursive_directory_iterator(corpus)) {
        if (!entry.is_regular_file()) {
            continue;
        }
        auto raw = util::read_file(entry.path().string());
        REQUIRE(raw.has_value());
        auto event = mime::parse_message(*raw, fixed_options());
        if (event) {
            CHECK_NOTHROW((void)event->dump());
            ++parsed;
        }
    }
    CHECK(parsed > 150);
}

TEST_CASE("mime::parse_message gives addresses as GMime's IDNA form of them") {
    // The addresses take a shortcut past libidn2 when their domain is ASCII without "xn--";
    // each must still read as internet_address_mailbox_get_idn_addr gives it.
    std::vector<std::string> addresses = {
        "a@example.com",
        "a@EXAMPLE.COM",
        "a@example.com.",
        "a@a..b",
        "a@-a.com",
        "a@ab--cd.com",
        "a@a_b.com",
        "a@[1.2.3.4]",
        "a@localhost",
        "a@xn--nxasmq6b.com",
        "a@XN--NXASMQ6B.COM",
        "a@bücher.example",
        "a@b\xc3\xbc"
        "cher.XN--example",
        "a@.com",
        "a@toolonglabeltoolonglabeltoolonglabeltoolonglabeltoolonglabeltoolonglabel.com"};
    mime::ensure_gmime();
    mime::OwnedParserOptions options(g_mime_parser_options_new()); // as parse_message's
    g_mime_parser_options_set_address_compliance_mode(options.get(), GMIME_RFC_COMPLIANCE_LOOSE);
    g_mime_parser_options_set_allow_addresses_without_domain(options.get(), TRUE);
    for (const auto& address : addresses) {
        CAPTURE(address);
        std::string raw = "From: x@example.com\nTo: " + address + "\n\nhi\n";
        auto event = mime::parse_message(raw, fixed_options());
        REQUIRE(event.has_value());
        const auto& to = (*event)["to"];
        mime::Owned<InternetAddressList> list(
            internet_address_list_parse(options.get(), address.c_str()));
        int count = list ? internet_address_list_length(list.get()) : 0;
        REQUIRE(to.size() == static_cast<std::size_t>(count)); // "a@a..b" is no mailbox
        for (int i = 0; i < count; ++i) {
            auto* mailbox =
                INTERNET_ADDRESS_MAILBOX(internet_address_list_get_address(list.get(), i));
            CHECK(to[i]["address"] == internet_address_mailbox_get_idn_addr(mailbox));
        }
    }
}

// GMime parses the members of an address group by recursion, one level per ':'. A field of
// 200,000 colons overflowed the stack (found by the fuzzer); now the colons past the limit
// are read as spaces, with a warning, and the rest of the message is parsed as before.
TEST_CASE("mime::parse_message reads an address field of deeply nested groups without "
          "recursing past the limit") {
    auto group_bomb = [](const std::string& field, std::size_t depth) {
        return field + ": " + std::string(depth, ':') + "deep@example.com" +
               std::string(depth, ';') + "\r\n";
    };
    std::string top =
        "From: a@example.com\r\n" + group_bomb("To", 200000) + "Subject: bomb\r\n\r\nbody\r\n";
    auto event = mime::parse_message(top, fixed_options());
    REQUIRE(event.has_value());
    CHECK((*event)["subject"] == "bomb");
    CHECK((*event)["text"] == "body\n");
    bool warned = false;
    for (const auto& w : (*event)["warnings"]) {
        if (w["code"] == "address_groups_flattened") {
            warned = true;
            CHECK(w["message"].get<std::string>().find("To has 200000 colons") == 0);
        }
    }
    CHECK(warned);

    // The same field inside an attached message, and read from a file (GMime's mapped stream).
    std::string nested = "From: a@example.com\r\nContent-Type: multipart/mixed; boundary=B\r\n"
                         "\r\n--B\r\nContent-Type: text/plain\r\n\r\nouter\r\n"
                         "--B\r\nContent-Type: message/rfc822\r\n\r\nFrom: b@example.com\r\n" +
                         group_bomb("cc", 150000) + "Subject: inner\r\n\r\ninner\r\n--B--\r\n";
    auto dir = std::filesystem::temp_directory_path() / "hookctl-mime-groups";
    std::filesystem::create_directories(dir);
    auto path = (dir / "nested.eml").string();
    REQUIRE(util::write_file_atomic(path, nested, 0600).has_value());
    auto from_file = mime::parse_file(path, fixed_options());
    std::filesystem::remove_all(dir);
    REQUIRE(from_file.has_value());
    CHECK((*from_file)["text"] == "outer");
    REQUIRE((*from_file)["attachments"].size() == 1);
    CHECK((*from_file)["attachments"][0]["content_type"] == "message/rfc822");

    // A field at the limit is left as written: real group syntax keeps its meaning.
    std::string ordinary = "From: a@example.com\r\nTo: team: x@example.com, y@example.com;, "
                           "z@example.com\r\n\r\nbody\r\n";
    auto plain = mime::parse_message(ordinary, fixed_options());
    REQUIRE(plain.has_value());
    REQUIRE((*plain)["to"].size() == 3);
    CHECK((*plain)["to"][0]["group"] == "team");
    CHECK((*plain)["to"][2]["address"] == "z@example.com");
    CHECK((*plain)["warnings"].empty());
}
