// The softphone example in C++, through the cxx binding (feature `cxx` of the
// ffi crate): RAII handles, rust::Slice frames, exceptions on error. One
// thread plays an 8 kHz mono WAV (PCM16 or G.711) through the call in 20 ms
// frames; the main thread is the agent's screen: it starts a capture, prints
// the agent-safe events and the token.
//
//   softphone_cpp IN.wav VAULT.sqlite
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <thread>
#include <vector>

#include "cardveil-ffi/src/cxx_bridge.rs.h"
#include "rust/cxx.h"

namespace {

struct Wav {
    uint16_t format = 0, channels = 0, bits = 0;
    uint32_t rate = 0;
    std::vector<uint8_t> data;
};

uint32_t le32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | uint32_t(p[3]) << 24; }
uint16_t le16(const uint8_t *p) { return uint16_t(p[0] | p[1] << 8); }

bool read_wav(const char *path, Wav &w) {
    std::ifstream f(path, std::ios::binary);
    std::vector<uint8_t> b((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    if (b.size() < 12 || std::memcmp(b.data(), "RIFF", 4) || std::memcmp(b.data() + 8, "WAVE", 4)) return false;
    for (size_t at = 12; at + 8 <= b.size();) {
        size_t size = std::min<size_t>(le32(&b[at + 4]), b.size() - at - 8);
        if (!std::memcmp(&b[at], "fmt ", 4) && size >= 16) {
            w.format = le16(&b[at + 8]), w.channels = le16(&b[at + 10]);
            w.rate = le32(&b[at + 12]), w.bits = le16(&b[at + 22]);
        } else if (!std::memcmp(&b[at], "data", 4)) {
            w.data.assign(b.begin() + long(at + 8), b.begin() + long(at + 8 + size));
        }
        at += 8 + size + (size & 1);
    }
    return w.format != 0 && !w.data.empty();
}

const char *field_name(uint32_t f) { return f == 1 ? "pan" : f == 2 ? "expiry" : f == 3 ? "cvv" : "-"; }

} // namespace

int main(int argc, char **argv) {
    if (argc != 3) {
        std::cerr << "usage: softphone_cpp IN.wav VAULT.sqlite\n";
        return 2;
    }
    Wav w;
    if (!read_wav(argv[1], w) || w.rate != 8000 || w.channels != 1 ||
        !((w.format == 1 && w.bits == 16) || w.format == 6 || w.format == 7)) {
        std::cerr << "softphone_cpp: " << argv[1] << ": need an 8 kHz mono WAV, PCM16 or G.711\n";
        return 1;
    }
    try {
        uint32_t encoding = w.format == 1 ? 0 : w.format == 7 ? 1 : 2;
        auto engine = cardveil::engine_new(8000, encoding, argv[2]);
        auto call = cardveil::call_new(*engine);
        std::cout << std::string(cardveil::version()) << " (C++): agent pressed \"take payment\"\n";
        call->capture_begin();
        std::atomic<bool> done{false};
        std::thread audio([&] {
            size_t bps = encoding == 0 ? 2 : 1, frame = 160 * bps;
            for (size_t at = 0; at < w.data.size(); at += frame) {
                size_t n = std::min(frame, w.data.size() - at) / bps;
                if (encoding == 0) {
                    int16_t pcm[160];
                    std::memcpy(pcm, &w.data[at], n * 2);
                    call->process_pcm16(0, rust::Slice<int16_t>(pcm, n));
                    std::memcpy(&w.data[at], pcm, n * 2);
                } else if (encoding == 1) {
                    call->process_ulaw(0, rust::Slice<uint8_t>(&w.data[at], n));
                } else {
                    call->process_alaw(0, rust::Slice<uint8_t>(&w.data[at], n));
                }
            }
            done = true;
        });
        cardveil::Event ev;
        bool got_token = false;
        // Poll until the token arrives, waiting up to 30 s once the audio ended.
        for (long idle_ms = 0; !got_token && idle_ms < 30000;) {
            if (!call->poll_event(ev)) {
                if (done) {
                    std::this_thread::sleep_for(std::chrono::milliseconds(1));
                    idle_ms++;
                }
                continue;
            }
            switch (ev.kind) {
            case 1: std::cout << "field " << field_name(ev.field) << ": started\n"; break;
            case 4:
                std::cout << "field " << field_name(ev.field) << ": valid";
                if (ev.field == 1) std::cout << ", last four " << std::string(ev.last4) << ", " << ev.digits << " digits";
                std::cout << "\n";
                break;
            case 5: std::cout << "field " << field_name(ev.field) << ": invalid\n"; break;
            case 6: std::cout << "capture complete\n"; break;
            case 7: std::cout << "capture failed\n"; break;
            case 9: std::cout << "token: " << std::string(ev.token) << "\n"; got_token = true; break;
            case 10: std::cout << "tokenization failed\n"; idle_ms = 30000; break;
            default: break;
            }
        }
        audio.join();
        if (got_token) std::cout << "the host stores " << std::string(call->token()) << "\n";
        return got_token ? 0 : 1;
    } catch (const rust::Error &e) {
        std::cerr << "softphone_cpp: " << e.what() << "\n";
        return 1;
    }
}
