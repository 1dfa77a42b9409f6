#include <algorithm>

#include <hookctl/util/spelling.hpp>

namespace hookctl::util {

std::size_t edit_distance(std::string_view a, std::string_view b) {
    // Three rows of the dynamic-programming table: two back (for swaps), previous, current.
    std::vector<std::size_t> before(b.size() + 1), previous(b.size() + 1), current(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j) {
        previous[j] = j;
    }
    for (std::size_t i = 1; i <= a.size(); ++i) {
        current[0] = i;
        for (std::size_t j = 1; j <= b.size(); ++j) {
            std::size_t substitution = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
            current[j] = std::min({previous[j] + 1, current[j - 1] + 1, substitution});
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
                current[j] = std::min(current[j], before[j - 2] + 1);
            }
        }
        std::swap(before, previous);
        std::swap(previous, current);
    }
    return previous[b.size()];
}

std::optional<Suggestion> closest_word(std::string_view word,
                                       const std::vector<std::string>& candidates) {
    std::optional<Suggestion> best;
    // A word cut short ("comp") names the command it starts.
    for (const auto& candidate : candidates) {
        if (!word.empty() && candidate.starts_with(word)) {
            return Suggestion{candidate, true};
        }
    }
    std::size_t best_distance = 0;
    for (const auto& candidate : candidates) {
        std::size_t d = edit_distance(word, candidate);
        if (!best || d < best_distance) {
            best = Suggestion{candidate, false};
            best_distance = d;
        }
    }
    if (best) {
        std::size_t longer = std::max(word.size(), best->word.size());
        best->likely = best_distance <= std::max<std::size_t>(1, longer / 3);
    }
    return best;
}

} // namespace hookctl::util
