#include <hookctl/replay/sender.hpp>

namespace hookctl::replay {
namespace {

class ClientSender final : public Sender {
public:
    explicit ClientSender(http::Client& client)
        : m_client(client) {}
    void start(http::Request request, Completion done) override {
        m_client.start(std::move(request), std::move(done));
    }
    Result<void> poll_until(std::chrono::steady_clock::time_point deadline) override {
        return m_client.poll_until(deadline);
    }
    std::size_t in_flight() const override { return m_client.in_flight(); }
    void wakeup() override { m_client.wakeup(); }

private:
    http::Client& m_client;
};

} // namespace

std::unique_ptr<Sender> client_sender(http::Client& client) {
    return std::make_unique<ClientSender>(client);
}

} // namespace hookctl::replay
