// Bare GMime parse of files (no JSON, no hashing, no decoding): the floor hookctl parse is
// compared with. Usage: parse_gmime REPEAT FILE...; prints "messages bytes seconds".
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <gmime/gmime.h>

int main(int argc, char** argv) {
    if (argc < 3) {
        std::fprintf(stderr, "usage: parse_gmime REPEAT FILE...\n");
        return 2;
    }
    g_mime_init();
    int repeat = std::stoi(argv[1]);
    std::vector<std::string> files;
    for (int i = 2; i < argc; ++i) {
        std::ifstream in(argv[i], std::ios::binary);
        files.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
    std::size_t messages = 0;
    std::size_t bytes = 0;
    auto start = std::chrono::steady_clock::now();
    for (int r = 0; r < repeat; ++r) {
        for (const auto& raw : files) {
            GMimeStream* stream = g_mime_stream_mem_new_with_buffer(raw.data(), raw.size());
            GMimeParser* parser = g_mime_parser_new_with_stream(stream);
            g_mime_parser_set_persist_stream(parser, TRUE);
            GMimeMessage* message = g_mime_parser_construct_message(parser, nullptr);
            if (message != nullptr) {
                g_object_unref(message);
            }
            g_object_unref(parser);
            g_object_unref(stream);
            ++messages;
            bytes += raw.size();
        }
    }
    std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
    std::printf("%zu %zu %.6f\n", messages, bytes, took.count());
    return 0;
}
