#include <string>

#include <doctest/doctest.h>

#include <hookctl/mime/text.hpp>

using namespace hookctl;

TEST_CASE("mime::repair_q_words escapes raw 8-bit bytes inside Q words only") {
    // The word's bytes become =XX; text around the word is left alone, 8-bit or not.
    CHECK(mime::repair_q_words("Heinz =?iso-8859-1?Q?M\xfcller?= \xe9t\xe9") ==
          "Heinz =?iso-8859-1?Q?M=FCller?= \xe9t\xe9");
    // Lower-case q, several words, the hex in upper case.
    CHECK(mime::repair_q_words("=?utf-8?q?\xc3\xa9?= and =?iso-8859-1?Q?Fr\xf6sche?=") ==
          "=?utf-8?q?=C3=A9?= and =?iso-8859-1?Q?Fr=F6sche?=");
}

TEST_CASE("mime::repair_q_words leaves alone what it must not change") {
    // Nothing to repair: nothing returned, so the caller keeps GMime's own decoding.
    CHECK_FALSE(mime::repair_q_words(""));
    CHECK_FALSE(mime::repair_q_words("plain \xfc text"));
    CHECK_FALSE(mime::repair_q_words("=?iso-8859-1?Q?M=FCller?="));
    // B words are base64: no raw byte there is valid either way, and it is not Q's to fix.
    CHECK_FALSE(mime::repair_q_words("=?iso-8859-1?B?\xfc?="));
    // A space inside is not one encoded word.
    CHECK_FALSE(mime::repair_q_words("=?iso-8859-1?Q?M\xfc ller?="));
    // Cut short: no closing ?=, or no encoding letter after the charset.
    CHECK_FALSE(mime::repair_q_words("=?iso-8859-1?Q?M\xfcller"));
    CHECK_FALSE(mime::repair_q_words("=?iso-8859-1?"));
    CHECK_FALSE(mime::repair_q_words("=?"));
    // A span with a space is not one word; the real word after it is repaired.
    CHECK(mime::repair_q_words("=?x y?Q?a?= =?x?Q?\x80?=") == "=?x y?Q?a?= =?x?Q?=80?=");
}

TEST_CASE("mime::may_need_q_repair is true only with both \"=?\" and an 8-bit byte") {
    CHECK(mime::may_need_q_repair("=?iso-8859-1?Q?M\xfcller?="));
    CHECK(mime::may_need_q_repair("\xfc =?"));
    CHECK_FALSE(mime::may_need_q_repair("=?iso-8859-1?Q?M=FCller?="));
    CHECK_FALSE(mime::may_need_q_repair("M\xfcller"));
    CHECK_FALSE(mime::may_need_q_repair(""));
    CHECK_FALSE(mime::may_need_q_repair(nullptr));
    // Whenever it says no, repair_q_words has nothing to do either.
    for (const char* raw : {"=?a?Q?b?=", "\xff\xfe", "x =? y", "=?a?B?\xfc?= "}) {
        CAPTURE(raw);
        if (!mime::may_need_q_repair(raw)) {
            CHECK_FALSE(mime::repair_q_words(raw));
        }
    }
}

TEST_CASE("mime::unflow joins soft line breaks and undoes space-stuffing (RFC 3676)") {
    CHECK(mime::unflow("Hello \r\nworld\r\nnext line\r\n", false) == "Hello world\nnext line\n");
    // DelSp=yes: the space before the soft break goes too.
    CHECK(mime::unflow("Hel \nlo\n", true) == "Hello\n");
    CHECK(mime::unflow("Hel \nlo\n", false) == "Hel lo\n");
    // Space-stuffed lines lose their first space.
    CHECK(mime::unflow("  indented\n From here\n", false) == " indented\nFrom here\n");
    // The signature separator "-- " is a hard break.
    CHECK(mime::unflow("text\n-- \nme\n", false) == "text\n-- \nme\n");
    // No final line break in, none out; empty in, empty out.
    CHECK(mime::unflow("a \nb", false) == "a b");
    CHECK(mime::unflow("", false).empty());
    CHECK(mime::unflow("\n\n", false) == "\n\n");
}

TEST_CASE("mime::unflow keeps quote depth: soft breaks join only lines of one depth") {
    CHECK(mime::unflow(">> one \n>> two\n> three\n", false) == ">> one two\n> three\n");
    // A soft break followed by a line of another depth is a hard break after all.
    CHECK(mime::unflow("> soft \n>> deeper\n", false) == "> soft \n>> deeper\n");
    CHECK(mime::unflow(">quoted\n", false) == "> quoted\n");
}

TEST_CASE("mime::lowercase lowers ASCII letters only; is_utf8_name knows UTF-8 and ASCII") {
    CHECK(mime::lowercase("Text/HTML; Charset=UTF-8") == "text/html; charset=utf-8");
    CHECK(mime::lowercase("\xc3\x89T\xc3\x89") == "\xc3\x89t\xc3\x89"); // UTF-8 bytes kept
    CHECK(mime::lowercase("").empty());
    for (const char* name : {"utf-8", "utf8", "us-ascii", "ascii"}) {
        CHECK(mime::is_utf8_name(name));
    }
    for (const char* name : {"UTF-8", "iso-8859-1", "windows-1252", "", "utf-16"}) {
        CAPTURE(name);
        CHECK_FALSE(mime::is_utf8_name(name));
    }
}
