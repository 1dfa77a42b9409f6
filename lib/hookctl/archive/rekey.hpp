#pragma once

// `hookctl events rekey`: moves every sealed value of an archive (bodies, raw MIME, re-parses)
// to one archive key, in batches, resumably; also encrypts an archive that holds values in
// clear (hookctl-events(1), ENCRYPTION).

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <hookctl/archive/archive.hpp>

namespace hookctl::archive {

// Where a rekey stands.
struct RekeyProgress {
    std::string to;                   // the key every value moves to
    bool resumed = false;             // an unfinished rekey to the same key was continued
    bool encrypting = false;          // the archive held values in clear when this rekey began
    std::int64_t resealed = 0;        // values re-encrypted (or encrypted) by this invocation
    std::int64_t unchanged = 0;       // values found already under `to`
    std::int64_t rows_left = 0;       // rows of bodies and re-parses not examined yet (estimate)
    std::vector<std::string> retired; // keys no longer used, once finished
    bool finished = false;
};

struct RekeyOptions {
    std::size_t batch_rows = 256; // rows per transaction
    // Called after each committed batch; false stops (an unfinished rekey resumes where it
    // stopped when run again with the same new key).
    std::function<bool(const RekeyProgress&)> progress;
};

// Rekeys `archive`, opened with a cipher whose write key is the new key and whose other keys
// are the old ones. Each batch is one transaction recording its cursor in archive_meta, so a
// process killed at any point leaves every value readable and a second run finishes the job.
// The last transaction takes the rows stored meanwhile and records the new key as the only
// one. Fails (exit 2) when the archive is encrypted under a key that was not given (`--old-key`);
// (exit 4) on a value that does not open (altered) or a storage error.
Result<RekeyProgress> rekey(Store& archive, const RekeyOptions& options = {});

} // namespace hookctl::archive
