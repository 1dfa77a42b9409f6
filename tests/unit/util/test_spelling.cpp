#include <algorithm>

#include <doctest/doctest.h>

#include <hookctl/util/spelling.hpp>

using namespace hookctl;

TEST_CASE("util::edit_distance counts insertions, deletions, substitutions and swaps") {
    CHECK(util::edit_distance("", "") == 0);
    CHECK(util::edit_distance("sign", "sign") == 0);
    CHECK(util::edit_distance("", "sign") == 4);
    CHECK(util::edit_distance("sgn", "sign") == 1);   // insertion
    CHECK(util::edit_distance("signs", "sign") == 1); // deletion
    CHECK(util::edit_distance("sigm", "sign") == 1);  // substitution
    CHECK(util::edit_distance("sing", "sign") == 1);  // swap of neighbours
    CHECK(util::edit_distance("kitten", "sitting") == 3);
}

TEST_CASE("util::closest_word suggests a likely typo and still names the closest word") {
    const std::vector<std::string> commands{"sign",   "verify", "send",      "replay",
                                            "parse",  "probe",  "secret",    "rotate",
                                            "listen", "events", "completion"};
    auto typo = util::closest_word("verfiy", commands);
    REQUIRE(typo);
    CHECK(typo->word == "verify");
    CHECK(typo->likely);
    auto prefix = util::closest_word("comp", commands);
    REQUIRE(prefix);
    CHECK(prefix->word == "completion");
    CHECK(prefix->likely);
    auto far = util::closest_word("frobnicate", commands);
    REQUIRE(far);
    CHECK_FALSE(far->likely);
    CHECK(std::find(commands.begin(), commands.end(), far->word) != commands.end());
    CHECK_FALSE(util::closest_word("x", {}));
}
