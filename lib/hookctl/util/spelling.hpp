#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hookctl::util {

// The edit distance between `a` and `b`: the fewest single-character insertions, deletions,
// substitutions and swaps of two neighbours (optimal string alignment) that turn one into the
// other.
std::size_t edit_distance(std::string_view a, std::string_view b);

// The word of `candidates` that `word` is a prefix of (the first), else the one closest to it
// by edit distance (the first of equals), and whether it is a likely typo of it: a prefix, or at
// most a third of the longer word's letters (and at least one) differ.
struct Suggestion {
    std::string word;
    bool likely = false;
};
// Nothing when `candidates` is empty.
std::optional<Suggestion> closest_word(std::string_view word,
                                       const std::vector<std::string>& candidates);

} // namespace hookctl::util
