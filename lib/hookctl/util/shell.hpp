#pragma once

#include <string>
#include <string_view>

namespace hookctl::util {

// Quotes `s` for a POSIX shell: single quotes, each ' written as '\''.
std::string shell_quote(std::string_view s);

} // namespace hookctl::util
