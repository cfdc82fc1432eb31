/* Test helper: keyed DTMF as 8 kHz PCM16, written here for the C tests. */
#ifndef CARDVEIL_TEST_DTMF_H
#define CARDVEIL_TEST_DTMF_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define DTMF_PI 3.14159265358979323846

static const double DTMF_ROW[4] = {697.0, 770.0, 852.0, 941.0};
static const double DTMF_COL[4] = {1209.0, 1336.0, 1477.0, 1633.0};
static const char DTMF_KEYS[] = "123A456B789C*0#D";

/* Samples needed for `keys` keyed 70 ms on / 80 ms off after 200 ms of quiet, plus 600 ms after. */
static size_t dtmf_len(const char *keys) { return (size_t)(1600 + 1200 * strlen(keys) + 4800); }

/* Writes `keys` into `out` (dtmf_len(keys) samples) at about -10 dBm0 per tone. */
static void dtmf_fill(const char *keys, int16_t *out) {
    size_t n = dtmf_len(keys), at = 1600;
    memset(out, 0, n * sizeof *out);
    for (const char *k = keys; *k; k++) {
        const char *p = strchr(DTMF_KEYS, *k);
        if (!p) continue;
        int i = (int)(p - DTMF_KEYS);
        double lo = DTMF_ROW[i / 4], hi = DTMF_COL[i % 4];
        for (size_t s = 0; s < 560; s++) {
            double t = (double)s / 8000.0;
            double v = 5000.0 * sin(2.0 * DTMF_PI * lo * t) + 5000.0 * sin(2.0 * DTMF_PI * hi * t);
            out[at + s] = (int16_t)v;
        }
        at += 1200;
    }
}

/* G.711 μ-law (the classic segment encoder, written here for the tests). */
static inline uint8_t ulaw_encode(int16_t sample) {
    int v = sample, sign = 0;
    if (v < 0) v = -v, sign = 0x80;
    if (v > 32635) v = 32635;
    v += 0x84;
    int exp = 7;
    for (int mask = 0x4000; (v & mask) == 0 && exp > 0; mask >>= 1) exp--;
    int mantissa = (v >> (exp + 3)) & 0x0F;
    return (uint8_t)~(sign | (exp << 4) | mantissa);
}

static inline int16_t ulaw_decode(uint8_t code) {
    code = (uint8_t)~code;
    int exp = (code >> 4) & 7, v = ((((code & 0x0F) << 3) + 0x84) << exp) - 0x84;
    return (int16_t)((code & 0x80) ? -v : v);
}

/* An RTP packet (12-byte header, SSRC 0x5EED) with `payload` into `out`; its length. */
static inline size_t rtp_packet(uint8_t *out, uint8_t pt, uint16_t seq, uint32_t ts, const uint8_t *payload, size_t n) {
    uint8_t h[12] = {0x80, pt, (uint8_t)(seq >> 8), (uint8_t)seq, (uint8_t)(ts >> 24), (uint8_t)(ts >> 16),
                     (uint8_t)(ts >> 8), (uint8_t)ts, 0, 0, 0x5E, 0xED};
    memcpy(out, h, 12);
    memcpy(out + 12, payload, n);
    return 12 + n;
}

#endif
