#include <algorithm>

#include <hookctl/archive/rekey.hpp>

namespace hookctl::archive {
namespace {

// Commits, or rolls back and returns the error.
Result<void> finish(Store& archive, Result<void> done) {
    if (!done) {
        archive.rollback();
        return done;
    }
    return archive.commit();
}

std::int64_t& cursor_of(EncryptionState::Rekey& r, StoredTable table) {
    return table == StoredTable::bodies ? r.bodies_after : r.reparses_after;
}

// Re-seals the next batch of `table` after the cursor under the write key; advances the cursor
// in `state` (not recorded). Returns how many rows it read (0: none left).
Result<std::size_t> reseal_batch(Store& archive, EncryptionState& state, StoredTable table,
                                 std::size_t rows, RekeyProgress& progress) {
    auto& cursor = cursor_of(*state.rekey, table);
    auto values = archive.stored_values(table, cursor, rows);
    HOOKCTL_RETURN_IF_ERROR(values);
    std::vector<StoredValue> changed;
    std::int64_t last = cursor;
    std::size_t read_rows = 0;
    const BodyCodec& codec = archive.codec();
    for (auto& v : *values) {
        if (v.row != last) {
            ++read_rows;
            last = v.row;
        }
        if (BodyCodec::sealed_under(v.bytes, state.rekey->to)) {
            ++progress.unchanged;
            continue;
        }
        auto plain = codec.decode(std::move(v.bytes), v.field, v.event_id, table, v.row);
        HOOKCTL_RETURN_IF_ERROR(plain);
        auto sealed = codec.encode(*plain, v.field, v.event_id);
        HOOKCTL_RETURN_IF_ERROR(sealed);
        v.bytes = std::move(*sealed);
        changed.push_back(std::move(v));
        ++progress.resealed;
    }
    if (!changed.empty()) {
        if (auto replaced = archive.replace_stored_values(changed); !replaced) {
            return std::unexpected(replaced.error());
        }
    }
    cursor = last;
    return read_rows;
}

Result<std::int64_t> rows_left(Store& archive, const EncryptionState& state) {
    std::int64_t left = 0;
    for (auto table : {StoredTable::bodies, StoredTable::reparses}) {
        auto last = archive.last_stored_row(table);
        HOOKCTL_RETURN_IF_ERROR(last);
        auto rekey = state.rekey.value_or(EncryptionState::Rekey{});
        left += std::max<std::int64_t>(
            0, *last - (table == StoredTable::bodies ? rekey.bodies_after : rekey.reparses_after));
    }
    return left;
}

// The first transaction: the state a rekey to the write key starts from (or resumes).
Result<EncryptionState> start(Store& archive, const BodyCipher& cipher, RekeyProgress& progress) {
    auto state = archive.reload_encryption();
    HOOKCTL_RETURN_IF_ERROR(state);
    const std::string& to = cipher.write_key_id();
    progress.to = to;
    if (!state->encrypted) {
        auto bodies = archive.last_stored_row(StoredTable::bodies);
        auto reparses = archive.last_stored_row(StoredTable::reparses);
        if (!bodies || !reparses) {
            return std::unexpected(!bodies ? bodies.error() : reparses.error());
        }
        state->encrypted = true;
        state->key_ids = {to};
        state->rekey = EncryptionState::Rekey{to, 0, 0, *bodies, *reparses};
        progress.encrypting = true;
        return state;
    }
    std::string missing;
    for (const auto& id : state->key_ids) {
        if (id != to && !cipher.has_key(id)) {
            missing += (missing.empty() ? "" : ", ") + id;
        }
    }
    if (!missing.empty()) {
        return fail(ExitCode::usage, "archive " + archive.path() +
                                         " holds values under archive key " + missing +
                                         ", which was not given: pass it with --old-key FILE "
                                         "(nothing was changed)");
    }
    if (state->rekey && state->rekey->to == to) {
        progress.resumed = true;
        progress.encrypting =
            state->rekey->bodies_plain_until > 0 || state->rekey->reparses_plain_until > 0;
    } else {
        EncryptionState::Rekey fresh{to, 0, 0, 0, 0};
        if (state->rekey) { // another rekey stopped half-way: values in clear may remain
            fresh.bodies_plain_until = state->rekey->bodies_plain_until;
            fresh.reparses_plain_until = state->rekey->reparses_plain_until;
        }
        state->rekey = fresh;
    }
    if (!state->has_key(to)) {
        state->key_ids.push_back(to);
    }
    return state;
}

} // namespace

Result<RekeyProgress> rekey(Store& archive, const RekeyOptions& options) {
    const auto cipher = archive.codec().cipher();
    if (!cipher) {
        return fail(ExitCode::usage, "events rekey needs the new key: pass --archive-key FILE");
    }
    const std::size_t rows = std::max<std::size_t>(1, options.batch_rows);
    RekeyProgress progress;
    EncryptionState state;
    {
        if (auto begun = archive.begin(); !begun) {
            return std::unexpected(begun.error());
        }
        auto started = start(archive, *cipher, progress);
        Result<void> done = started ? archive.record_encryption(*started)
                                    : Result<void>(std::unexpected(started.error()));
        if (auto ok = finish(archive, std::move(done)); !ok) {
            return std::unexpected(ok.error());
        }
        state = std::move(*started);
    }
    // Batches, one transaction each, the cursor recorded with the values it covers.
    for (auto table : {StoredTable::bodies, StoredTable::reparses}) {
        for (;;) {
            if (auto begun = archive.begin(); !begun) {
                return std::unexpected(begun.error());
            }
            auto read = reseal_batch(archive, state, table, rows, progress);
            Result<void> done = read ? archive.record_encryption(state)
                                     : Result<void>(std::unexpected(read.error()));
            if (auto ok = finish(archive, std::move(done)); !ok) {
                return std::unexpected(ok.error());
            }
            if (*read == 0) {
                break;
            }
            if (auto left = rows_left(archive, state)) {
                progress.rows_left = *left;
            }
            if (options.progress && !options.progress(progress)) {
                return progress;
            }
        }
    }
    // The last transaction: rows stored since the batches passed them (a writer still running
    // with an old key), then the new key becomes the only one.
    if (auto begun = archive.begin(); !begun) {
        return std::unexpected(begun.error());
    }
    Result<void> done;
    for (auto table : {StoredTable::bodies, StoredTable::reparses}) {
        for (;;) {
            auto read = reseal_batch(archive, state, table, rows, progress);
            if (!read) {
                done = std::unexpected(read.error());
                break;
            }
            if (*read == 0) {
                break;
            }
        }
    }
    if (done) {
        for (const auto& id : state.key_ids) {
            if (id != state.rekey->to) {
                progress.retired.push_back(id);
            }
        }
        state.key_ids = {state.rekey->to};
        state.rekey.reset();
        done = archive.record_encryption(state);
    }
    if (auto ok = finish(archive, std::move(done)); !ok) {
        return std::unexpected(ok.error());
    }
    progress.rows_left = 0;
    progress.finished = true;
    // The WAL still holds the pages as they were before: truncate it (best effort: a reader
    // holding a snapshot keeps it until the next checkpoint).
    (void)archive.checkpoint();
    return progress;
}

} // namespace hookctl::archive
