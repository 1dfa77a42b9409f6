#include <algorithm>
#include <chrono>
#include <cstdio>
#include <sstream>

#include <hookctl/probe/probe.hpp>

// How a probe report is shown: JSON (--json), JUnit XML (--junit) and the terminal table.

namespace hookctl::probe {
namespace {

std::string xml_escape(std::string_view s) {
    std::string out;
    for (char c : s) {
        switch (c) {
        case '&':
            out += "&amp;";
            break;
        case '<':
            out += "&lt;";
            break;
        case '>':
            out += "&gt;";
            break;
        case '"':
            out += "&quot;";
            break;
        case '\'':
            out += "&apos;";
            break;
        default:
            if (static_cast<unsigned char>(c) < 0x20 && c != '\n' && c != '\t') {
                out += ' ';
            } else {
                out += c;
            }
        }
    }
    return out;
}

std::string seconds_text(std::chrono::microseconds latency) {
    char text[32];
    std::snprintf(text, sizeof text, "%.6f", static_cast<double>(latency.count()) / 1e6);
    return text;
}

} // namespace

nlohmann::json to_json(const Report& report) {
    nlohmann::json checks = nlohmann::json::array();
    for (const auto& c : report.checks) {
        checks.push_back({{"name", c.name},
                          {"status", to_string(c.status)},
                          {"expected", c.expected},
                          {"got", c.got},
                          {"detail", c.detail},
                          {"latency_ms", static_cast<double>(c.latency.count()) / 1000.0}});
    }
    return {{"url", report.url},       {"scheme", report.scheme},   {"passed", report.passed},
            {"failed", report.failed}, {"skipped", report.skipped}, {"checks", checks}};
}

std::string to_junit(const Report& report) {
    std::chrono::microseconds total{};
    for (const auto& c : report.checks) {
        total += c.latency;
    }
    std::ostringstream out;
    out << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
    out << "<testsuites name=\"hookctl probe\" tests=\"" << report.checks.size() << "\" failures=\""
        << report.failed << "\" skipped=\"" << report.skipped << "\" time=\"" << seconds_text(total)
        << "\">\n";
    out << "  <testsuite name=\"hookctl probe " << xml_escape(report.url) << "\" tests=\""
        << report.checks.size() << "\" failures=\"" << report.failed << "\" errors=\"0\" skipped=\""
        << report.skipped << "\" time=\"" << seconds_text(total) << "\">\n";
    out << "    <properties>\n      <property name=\"url\" value=\"" << xml_escape(report.url)
        << "\"/>\n      <property name=\"scheme\" value=\"" << xml_escape(report.scheme)
        << "\"/>\n    </properties>\n";
    for (const auto& c : report.checks) {
        out << "    <testcase classname=\"hookctl.probe\" name=\"" << xml_escape(c.name)
            << "\" time=\"" << seconds_text(c.latency) << "\"";
        if (c.status == Status::pass) {
            out << "/>\n";
            continue;
        }
        out << ">\n";
        if (c.status == Status::fail) {
            out << "      <failure message=\"expected " << xml_escape(c.expected) << ", got "
                << xml_escape(c.got) << "\" type=\"check_failed\">" << xml_escape(c.detail)
                << "</failure>\n";
        } else {
            out << "      <skipped message=\"" << xml_escape(c.detail) << "\"/>\n";
        }
        out << "    </testcase>\n";
    }
    out << "  </testsuite>\n</testsuites>\n";
    return out.str();
}

std::string to_table(const Report& report) {
    std::size_t name_width = 5;
    std::size_t expected_width = 8;
    for (const auto& c : report.checks) {
        name_width = std::max(name_width, c.name.size());
        expected_width = std::max(expected_width, c.expected.size());
    }
    auto pad = [](std::string s, std::size_t width) {
        s.resize(std::max(s.size(), width), ' ');
        return s;
    };
    std::ostringstream out;
    out << "probe " << report.url << " (scheme " << report.scheme << ")\n";
    out << pad("CHECK", name_width) << "  STATUS  " << pad("EXPECTED", expected_width) << "  GOT\n";
    for (const auto& c : report.checks) {
        std::string got = c.got.size() > 60 ? c.got.substr(0, 57) + "..." : c.got;
        out << pad(c.name, name_width) << "  " << pad(std::string(to_string(c.status)), 6) << "  "
            << pad(c.expected, expected_width) << "  " << got;
        if (!c.detail.empty()) {
            out << (got.empty() ? "" : "  ") << "(" << c.detail << ")";
        }
        out << "\n";
    }
    out << report.passed << " passed, " << report.failed << " failed, " << report.skipped
        << " skipped\n";
    return out.str();
}

} // namespace hookctl::probe
