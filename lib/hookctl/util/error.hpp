#pragma once

#include <expected>
#include <string>

namespace hookctl {

// The documented exit codes of every hookctl command (hookctl(1), EXIT STATUS).
enum class ExitCode : int {
    ok = 0,           // success
    check_failed = 1, // the thing checked failed: invalid signature, probe failed, not delivered
    usage = 2,        // usage or input error: bad flag, unreadable file, malformed secret
    aborted = 3,      // circuit breaker tripped or interrupted (resumable)
    environment = 4,  // cannot bind, cannot open archive, target unreachable at start
};

// An error a person can act on: what failed, on which input, and what to do.
struct Error {
    ExitCode code = ExitCode::usage;
    std::string message;
};

template <class T> using Result = std::expected<T, Error>;

// Shorthand for `return fail(ExitCode::usage, "...")` in functions returning Result<T>.
inline std::unexpected<Error> fail(ExitCode code, std::string message) {
    return std::unexpected<Error>(Error{code, std::move(message)});
}

} // namespace hookctl

// Returns the error of `result` (a std::expected) from the enclosing function, which returns a
// std::expected with the same error type; goes on when `result` holds a value. It stands for
//     if (!result) {
//         return std::unexpected(result.error());
//     }
// the early return that otherwise follows nearly every call of a function returning Result.
// `result` is an lvalue (it is read twice).
#define HOOKCTL_RETURN_IF_ERROR(result)                                                            \
    do {                                                                                           \
        if (!(result)) {                                                                           \
            return std::unexpected((result).error());                                              \
        }                                                                                          \
    } while (false)
