// libFuzzer target: any byte string through hookctl::mime::parse_message and the mbox splitter.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include <hookctl/mime/parse.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view raw(reinterpret_cast<const char*>(data), size);
    hookctl::mime::ParseOptions options;
    options.org_id = "org_fuzz";
    options.received_at = "2026-01-01T00:00:00Z";
    options.trace_id = "00000000000000000000000000000000";
    options.inline_attachments_max = 64;
    auto event = hookctl::mime::parse_message(raw, options);
    if (event) {
        // Serialising checks that every string in the event is valid UTF-8 (dump throws).
        (void)event->dump();
    }
    return 0;
}
