#pragma once

#include <string>
#include <vector>

#include <hookctl/keys/secret.hpp>
#include <hookctl/sig/verify.hpp>
#include <hookctl/util/headers.hpp>

#include "common.hpp"

namespace hookctl::cli {

// `verify --explain`: reads the body at `body_path`, explains the verdict under `request` with
// `secrets` (and the keyrings' past secrets), prints the explanation (text, or JSON with
// --json) and returns the exit code verify gives that verdict (0 valid, 1 invalid, 2 unreadable
// header or undecodable secret).
Result<ExitCode> explain_verify(const sig::VerifyRequest& request, const util::HeaderList& headers,
                                const std::vector<keys::SecretText>& secrets,
                                const std::string& body_path, const SecretFlags& flags,
                                const Context& context);

} // namespace hookctl::cli
