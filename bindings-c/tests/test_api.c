/* The C API from C: NULL and error paths, wrong lengths and types, the engine
 * freed before its calls, capture while frames flow on another thread, many
 * calls on many threads, a host tokenize callback, RTP calls, and random
 * sequences of calls. Built with -Wall -Wextra -Werror; run plain, under ASan+UBSan and
 * under valgrind (make test). */
#define _POSIX_C_SOURCE 200809L /* nanosleep */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cardveil.h"
#include "dtmf.h"

static int failures = 0;
#define CHECK(cond)                                                        \
    do {                                                                   \
        if (!(cond)) {                                                     \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
            failures++;                                                    \
        }                                                                  \
    } while (0)
#define CHECK_RC(call, want)                                               \
    do {                                                                   \
        cardveil_result rc_ = (call);                                      \
        if (rc_ != (want)) {                                               \
            fprintf(stderr, "%s:%d: %s = %u (%s), want %u\n", __FILE__, __LINE__, #call, rc_, \
                    cardveil_result_str(rc_), (unsigned)(want));           \
            failures++;                                                    \
        }                                                                  \
    } while (0)

static cardveil_engine *engine_with(cardveil_engine_config c) {
    cardveil_engine *e = NULL;
    CHECK_RC(cardveil_engine_new(&c, &e), CARDVEIL_OK);
    CHECK(e != NULL);
    return e;
}

static void test_basics_and_errors(void) {
    CHECK(strncmp(cardveil_version(), "cardveil/", 9) == 0);
    for (uint32_t r = 0; r < 20; r++) CHECK(cardveil_result_str(r) != NULL && strlen(cardveil_result_str(r)) > 0);
    CHECK(strcmp(cardveil_result_str(CARDVEIL_OK), "ok") == 0);
    CHECK(strcmp(cardveil_result_str(9999), "unknown result code") == 0);

    cardveil_engine_config c = cardveil_engine_config_default();
    cardveil_engine *e = (cardveil_engine *)0x1;
    CHECK_RC(cardveil_engine_new(NULL, &e), CARDVEIL_NULL_ARGUMENT);
    CHECK(e == (cardveil_engine *)0x1); /* out-params untouched on failure */
    CHECK_RC(cardveil_engine_new(&c, NULL), CARDVEIL_NULL_ARGUMENT);
    cardveil_engine_config bad = c;
    bad.sample_rate = 44100;
    CHECK_RC(cardveil_engine_new(&bad, &e), CARDVEIL_INVALID_ARGUMENT);
    bad = c, bad.encoding = 7;
    CHECK_RC(cardveil_engine_new(&bad, &e), CARDVEIL_INVALID_ARGUMENT);
    bad = c, bad.encoding = CARDVEIL_ENCODING_ULAW, bad.sample_rate = 16000;
    CHECK_RC(cardveil_engine_new(&bad, &e), CARDVEIL_INVALID_ARGUMENT);
    bad = c, bad.lookahead_ms = 201;
    CHECK_RC(cardveil_engine_new(&bad, &e), CARDVEIL_INVALID_ARGUMENT);
    bad = c, bad.mask_mode = 3;
    CHECK_RC(cardveil_engine_new(&bad, &e), CARDVEIL_INVALID_ARGUMENT);
    bad = c, bad.vault_kind = CARDVEIL_VAULT_SQLITE; /* no location */
    CHECK_RC(cardveil_engine_new(&bad, &e), CARDVEIL_NULL_ARGUMENT);
    bad = c, bad.vault_kind = CARDVEIL_VAULT_HOST; /* no function */
    CHECK_RC(cardveil_engine_new(&bad, &e), CARDVEIL_NULL_ARGUMENT);
    bad = c, bad.vault_kind = CARDVEIL_VAULT_POSTGRES, bad.vault_location = "host=127.0.0.1 port=1 user=x";
    CHECK_RC(cardveil_engine_new(&bad, &e), CARDVEIL_INVALID_ARGUMENT); /* no key given */
    static const uint8_t kek[32] = {1};
    bad.kek = kek, bad.kek_len = 32;
    CHECK_RC(cardveil_engine_new(&bad, &e), CARDVEIL_VAULT_ERROR); /* nothing listens there */
    bad.kek_len = 16;
    CHECK_RC(cardveil_engine_new(&bad, &e), CARDVEIL_INVALID_ARGUMENT);
    bad = c, bad.vault_kind = 9;
    CHECK_RC(cardveil_engine_new(&bad, &e), CARDVEIL_INVALID_ARGUMENT);
    cardveil_engine_free(NULL);
    cardveil_call_free(NULL);

    e = engine_with(c);
    cardveil_call *call = NULL;
    CHECK_RC(cardveil_call_new(NULL, 0, 0, &call), CARDVEIL_NULL_ARGUMENT);
    CHECK_RC(cardveil_call_new(e, 0, 0, NULL), CARDVEIL_NULL_ARGUMENT);
    CHECK_RC(cardveil_call_new(e, 2026, 13, &call), CARDVEIL_INVALID_ARGUMENT);
    CHECK_RC(cardveil_call_new(e, 2026, 11, &call), CARDVEIL_OK);

    int16_t pcm[480] = {0};
    uint8_t codes[160] = {0};
    CHECK_RC(cardveil_call_process_pcm16(NULL, 0, pcm, 160), CARDVEIL_NULL_ARGUMENT);
    CHECK_RC(cardveil_call_process_pcm16(call, 0, NULL, 160), CARDVEIL_NULL_ARGUMENT);
    CHECK_RC(cardveil_call_process_pcm16(call, 0, NULL, 0), CARDVEIL_OK);
    CHECK_RC(cardveil_call_process_pcm16(call, 2, pcm, 160), CARDVEIL_INVALID_ARGUMENT);
    CHECK_RC(cardveil_call_process_pcm16(call, 0, pcm, 481), CARDVEIL_INVALID_LENGTH); /* > 60 ms */
    CHECK_RC(cardveil_call_process_pcm16(call, 0, pcm, (size_t)-1), CARDVEIL_INVALID_LENGTH);
    CHECK_RC(cardveil_call_process_pcm16(call, 0, pcm, 480), CARDVEIL_OK);
    CHECK_RC(cardveil_call_process_pcm16(call, 1, pcm, 1), CARDVEIL_OK);
    CHECK_RC(cardveil_call_process_ulaw(call, 0, codes, 160), CARDVEIL_WRONG_FRAME_TYPE);
    CHECK_RC(cardveil_call_process_alaw(call, 0, codes, 160), CARDVEIL_WRONG_FRAME_TYPE);

    cardveil_event ev;
    CHECK_RC(cardveil_call_poll_event(call, NULL), CARDVEIL_NULL_ARGUMENT);
    CHECK_RC(cardveil_call_poll_event(NULL, &ev), CARDVEIL_NULL_ARGUMENT);
    CHECK_RC(cardveil_call_poll_event(call, &ev), CARDVEIL_NO_EVENT);
    char tok[80];
    size_t len = 0;
    CHECK_RC(cardveil_call_token(call, tok, sizeof tok, &len), CARDVEIL_NO_VAULT);
    CHECK_RC(cardveil_call_take_cvv(call, tok, sizeof tok, &len), CARDVEIL_NO_VAULT);
    CHECK_RC(cardveil_call_token(call, NULL, sizeof tok, &len), CARDVEIL_NULL_ARGUMENT);
    CHECK_RC(cardveil_call_capture_begin(NULL), CARDVEIL_NULL_ARGUMENT);
    CHECK_RC(cardveil_call_capture_cancel(NULL), CARDVEIL_NULL_ARGUMENT);

    /* The engine outlives its last call: free it, make another, use it. */
    cardveil_call *second = NULL;
    CHECK_RC(cardveil_call_new(e, 2026, 11, &second), CARDVEIL_OK);
    cardveil_call_free(second);
    second = NULL;
    CHECK_RC(cardveil_call_new(e, 2026, 11, &second), CARDVEIL_OK);
    CHECK_RC(cardveil_call_process_pcm16(second, 1, pcm, 160), CARDVEIL_OK);
    cardveil_call_free(second);

    /* The engine may go first: the call keeps it alive. */
    cardveil_engine_free(e);
    CHECK_RC(cardveil_call_capture_begin(call), CARDVEIL_OK);
    for (int i = 0; i < 10; i++) CHECK_RC(cardveil_call_process_pcm16(call, 0, pcm, 160), CARDVEIL_OK);
    CHECK_RC(cardveil_call_poll_event(call, &ev), CARDVEIL_OK);
    CHECK(ev.kind == CARDVEIL_EVENT_FIELD_STARTED && ev.field == CARDVEIL_FIELD_PAN);
    cardveil_call_free(call);
}

/* ---- capture with a host vault while frames flow on another thread ---- */

struct host { int calls; char last_pan[20]; };

static int32_t host_tokenize(void *user, const uint8_t *pan, size_t pan_len, const uint8_t *expiry, size_t expiry_len,
                             char *token_out, size_t token_cap) {
    struct host *h = user;
    h->calls++;
    if (pan_len >= sizeof h->last_pan || expiry_len != 4 || !expiry) return 1;
    memcpy(h->last_pan, pan, pan_len);
    h->last_pan[pan_len] = 0;
    snprintf(token_out, token_cap, "psp_%zu_%c%c%c%c", pan_len, pan[pan_len - 4], pan[pan_len - 3], pan[pan_len - 2],
             pan[pan_len - 1]);
    return 0;
}

struct feed { cardveil_call *call; int16_t *pcm; size_t n; atomic_int done; };

static void *feed_frames(void *arg) {
    struct feed *f = arg;
    for (size_t at = 0; at < f->n; at += 160) {
        size_t len = f->n - at < 160 ? f->n - at : 160;
        if (cardveil_call_process_pcm16(f->call, CARDVEIL_CALLER_TO_AGENT, f->pcm + at, len) != CARDVEIL_OK) break;
    }
    f->done = 1;
    return NULL;
}

static void test_capture_host_vault_threads(void) {
    struct host h = {0};
    cardveil_engine_config c = cardveil_engine_config_default();
    c.vault_kind = CARDVEIL_VAULT_HOST;
    c.host_tokenize = host_tokenize;
    c.host_user = &h;
    cardveil_engine *e = engine_with(c);
    cardveil_call *call = NULL;
    CHECK_RC(cardveil_call_new(e, 2026, 11, &call), CARDVEIL_OK);
    cardveil_engine_free(e);
    const char *keys = "4111111111111111#1229#123#";
    struct feed f = {call, malloc(dtmf_len(keys) * sizeof(int16_t)), dtmf_len(keys), 0};
    dtmf_fill(keys, f.pcm);
    CHECK_RC(cardveil_call_capture_begin(call), CARDVEIL_OK);
    pthread_t t;
    pthread_create(&t, NULL, feed_frames, &f);
    int valid_pan = 0, complete = 0, token = 0, masked = 0, digits = 0;
    /* Poll while frames flow; once they stop, wait up to 30 s (valgrind is slow) for the token. */
    for (int idle_ms = 0; !token && idle_ms < 30000;) {
        cardveil_event ev;
        cardveil_result rc = cardveil_call_poll_event(call, &ev);
        if (rc == CARDVEIL_NO_EVENT) {
            if (atomic_load(&f.done)) {
                nanosleep(&(struct timespec){0, 1000000}, NULL);
                idle_ms++;
            }
            continue;
        }
        CHECK_RC(rc, CARDVEIL_OK);
        switch (ev.kind) {
        case CARDVEIL_EVENT_DIGIT: digits++; break;
        case CARDVEIL_EVENT_MASKED: masked++; CHECK(ev.end > ev.start); break;
        case CARDVEIL_EVENT_VALID:
            if (ev.field == CARDVEIL_FIELD_PAN) {
                valid_pan = ev.brand == CARDVEIL_BRAND_VISA && ev.digits == 16 && strcmp(ev.last4, "1111") == 0;
            }
            break;
        case CARDVEIL_EVENT_COMPLETE: complete = 1; break;
        case CARDVEIL_EVENT_TOKEN:
            token = 1;
            CHECK(strcmp(ev.token, "psp_16_1111") == 0);
            CHECK(strcmp(ev.last4, "1111") == 0);
            break;
        case CARDVEIL_EVENT_TOKEN_FAILED: CHECK(!"tokenization failed"); break;
        default: break;
        }
    }
    pthread_join(t, NULL);
    CHECK(valid_pan && complete && token);
    CHECK(digits == 16 + 4 + 3);
    CHECK(masked >= 20);
    CHECK(h.calls == 1 && strcmp(h.last_pan, "4111111111111111") == 0);
    char tok[64];
    size_t len = 0;
    CHECK_RC(cardveil_call_token(call, tok, 5, &len), CARDVEIL_BUFFER_TOO_SMALL);
    CHECK(len == 11);
    CHECK_RC(cardveil_call_token(call, tok, sizeof tok, &len), CARDVEIL_OK);
    CHECK(strcmp(tok, "psp_16_1111") == 0 && len == 11);
    /* The CVV, for the payment step: once. */
    char cvv[8];
    CHECK_RC(cardveil_call_take_cvv(call, cvv, 4, &len), CARDVEIL_BUFFER_TOO_SMALL);
    CHECK_RC(cardveil_call_take_cvv(call, NULL, sizeof cvv, &len), CARDVEIL_NULL_ARGUMENT);
    CHECK_RC(cardveil_call_take_cvv(call, cvv, sizeof cvv, &len), CARDVEIL_OK);
    CHECK(strcmp(cvv, "123") == 0 && len == 3);
    memset(cvv, 0, sizeof cvv);
    CHECK_RC(cardveil_call_take_cvv(call, cvv, sizeof cvv, &len), CARDVEIL_NO_TOKEN);
    /* The keys are gone from the output audio. */
    long loud = 0;
    for (size_t i = 2000; i < f.n; i++) loud += f.pcm[i] > 200 || f.pcm[i] < -200;
    CHECK(loud == 0);
    memset(h.last_pan, 0, sizeof h.last_pan);
    cardveil_call_free(call);
    free(f.pcm);
}

/* ---- the two-phase API: analyse on arrival, mask at playout, no delay ---- */

static void test_two_phase(void) {
    cardveil_engine_config c = cardveil_engine_config_default();
    c.two_phase = 1;
    c.lookahead_ms = 40; /* the jitter buffer's depth */
    cardveil_engine *e = engine_with(c);
    cardveil_call *call = NULL;
    CHECK_RC(cardveil_call_new(e, 2026, 11, &call), CARDVEIL_OK);
    cardveil_engine_free(e);
    const char *keys = "4111111111111111#1229#123#";
    size_t n = dtmf_len(keys), packets = n / 160;
    int16_t *in = malloc(n * sizeof *in), *out = malloc(n * sizeof *out);
    dtmf_fill(keys, in);
    for (size_t i = 0; i < n; i++) in[i] = (int16_t)(in[i] + (int16_t)(i % 7) - 3); /* faint hiss */
    memcpy(out, in, n * sizeof *in);
    uint8_t codes[160] = {0};
    CHECK_RC(cardveil_call_process_pcm16(call, 0, out, 160), CARDVEIL_WRONG_API);
    CHECK_RC(cardveil_call_analyse_ulaw(call, 0, codes, 160, 0), CARDVEIL_WRONG_FRAME_TYPE);
    CHECK_RC(cardveil_call_analyse_pcm16(call, 0, NULL, 160, 0), CARDVEIL_NULL_ARGUMENT);
    CHECK_RC(cardveil_call_analyse_pcm16(call, 0, in, 481, 0), CARDVEIL_INVALID_LENGTH);
    CHECK_RC(cardveil_call_capture_begin(call), CARDVEIL_OK);
    int complete = 0;
    uint32_t ts0 = 0xFFFFF000u; /* the RTP clock wraps during the call */
    for (size_t p = 0; p < packets; p++) {
        uint32_t ts = ts0 + (uint32_t)(p * 160);
        CHECK_RC(cardveil_call_analyse_pcm16(call, 0, in + p * 160, 160, ts), CARDVEIL_OK);
        if (p % 7 == 3) /* a duplicate packet */
            CHECK_RC(cardveil_call_analyse_pcm16(call, 0, in + p * 160, 160, ts), CARDVEIL_OK);
        if (p >= 2) CHECK_RC(cardveil_call_mask_pcm16(call, 0, out + (p - 2) * 160, 160, ts - 320), CARDVEIL_OK);
        cardveil_event ev;
        while (cardveil_call_poll_event(call, &ev) == CARDVEIL_OK) complete |= ev.kind == CARDVEIL_EVENT_COMPLETE;
    }
    CHECK(complete);
    /* Not delayed: the quiet start is played as it came, sample for sample. */
    CHECK(memcmp(in, out, 1500 * sizeof *in) == 0); /* the first key starts at 1600; masking 2 ms before */
    /* The keys are masked. */
    long loud = 0;
    for (size_t i = 1600; i < (packets - 2) * 160; i++) loud += out[i] > 200 || out[i] < -200;
    CHECK(loud == 0);
    cardveil_call_free(call);
    free(in), free(out);
}

/* ---- RTP calls: packets in place, events neutralised or dropped, each key once ---- */

/* Feeds a keyed card as 20 ms μ-law RTP packets, each key also as three
 * telephone-event end packets, through an RTP call; reports the captures
 * completed, loud samples forwarded, whether every event was neutralised
 * (or dropped) and whether forwarded sequence numbers have no gap. */
static void rtp_call(uint32_t action, int *complete, long *loud, int *events_ok, int *seq_ok) {
    cardveil_engine *e = engine_with(cardveil_engine_config_default());
    cardveil_rtp_config rc = cardveil_rtp_config_default();
    rc.event_action = action;
    cardveil_call *call = NULL;
    CHECK_RC(cardveil_call_new_rtp(e, &rc, 2026, 11, &call), CARDVEIL_OK);
    cardveil_engine_free(e);
    const char *keys = "4111111111111111#1229#123#";
    size_t n = dtmf_len(keys);
    int16_t *pcm = malloc(n * sizeof *pcm);
    dtmf_fill(keys, pcm);
    CHECK_RC(cardveil_call_capture_begin(call), CARDVEIL_OK);
    uint8_t packet[200], codes[160];
    uint16_t seq = 65530, last_seq = 0; /* wraps */
    int first = 1;
    *complete = 0, *loud = 0, *events_ok = 1, *seq_ok = 1;
    for (size_t p = 0; p + 160 <= n; p += 160) {
        for (size_t i = 0; i < 160; i++) codes[i] = ulaw_encode(pcm[p + i]);
        for (int k = -1; k < (int)strlen(keys); k++) {
            size_t len;
            if (k < 0) {
                len = rtp_packet(packet, 0, seq++, (uint32_t)p, codes, 160);
            } else {
                size_t start = 1600 + 1200 * (size_t)k, end = start + 560;
                if (!(p + 160 > end && p + 160 - end <= 160)) continue;
                uint8_t ev[4] = {(uint8_t)(strchr("0123456789*#", keys[k]) - "0123456789*#"), 0x8A, 0x02, 0x30};
                len = rtp_packet(packet, 101, seq++, (uint32_t)start, ev, 4);
            }
            for (int r = 0; r < (k < 0 ? 1 : 3); r++) { /* end packets go three times */
                uint8_t copy[200];
                memcpy(copy, packet, len);
                uint32_t verdict = 99;
                CHECK_RC(cardveil_call_process_rtp(call, 0, copy, len, &verdict), CARDVEIL_OK);
                if (verdict == CARDVEIL_RTP_FORWARD) {
                    uint16_t s = (uint16_t)(copy[2] << 8 | copy[3]);
                    if (!first && s != (uint16_t)(last_seq + 1)) *seq_ok = 0;
                    first = 0, last_seq = s;
                    if (k < 0)
                        for (size_t i = 12; i < len; i++) *loud += abs(ulaw_decode(copy[i])) > 200;
                    else if (copy[12] != 15)
                        *events_ok = 0;
                } else if (!(verdict == CARDVEIL_RTP_DROP && k >= 0 && action == CARDVEIL_EVENTS_DROP)) {
                    *events_ok = 0;
                }
                if (r < 2 && k >= 0) packet[2] = (uint8_t)(seq >> 8), packet[3] = (uint8_t)seq, seq++;
            }
        }
        cardveil_event ev;
        while (cardveil_call_poll_event(call, &ev) == CARDVEIL_OK)
            *complete += ev.kind == CARDVEIL_EVENT_COMPLETE;
    }
    cardveil_call_free(call);
    free(pcm);
}

static void test_rtp(void) {
    for (uint32_t action = 0; action < 2; action++) {
        int complete, events_ok, seq_ok;
        long loud;
        rtp_call(action, &complete, &loud, &events_ok, &seq_ok);
        CHECK(complete == 1); /* in band and as events, yet every field valid: each key once */
        CHECK(loud == 0);     /* the agent hears no key */
        CHECK(events_ok);     /* neutralised to event 15, or dropped */
        CHECK(seq_ok);        /* no gap in the forwarded sequence numbers */
    }
    /* Errors and the other call kinds. */
    cardveil_engine_config c = cardveil_engine_config_default();
    cardveil_engine *e = engine_with(c);
    cardveil_call *call = NULL, *frames = NULL;
    cardveil_rtp_config bad = cardveil_rtp_config_default();
    bad.event_action = 7;
    CHECK_RC(cardveil_call_new_rtp(e, &bad, 2026, 11, &call), CARDVEIL_INVALID_ARGUMENT);
    bad = cardveil_rtp_config_default(), bad.event_payload_type = 128;
    CHECK_RC(cardveil_call_new_rtp(e, &bad, 2026, 11, &call), CARDVEIL_INVALID_ARGUMENT);
    bad = cardveil_rtp_config_default(), bad.fixed_event = 256;
    CHECK_RC(cardveil_call_new_rtp(e, &bad, 2026, 11, &call), CARDVEIL_INVALID_ARGUMENT);
    CHECK_RC(cardveil_call_new_rtp(NULL, NULL, 2026, 11, &call), CARDVEIL_NULL_ARGUMENT);
    CHECK(call == NULL);
    CHECK_RC(cardveil_call_new_rtp(e, NULL, 2026, 11, &call), CARDVEIL_OK);
    CHECK_RC(cardveil_call_new(e, 2026, 11, &frames), CARDVEIL_OK);
    uint8_t packet[172] = {0x80, 0}, tiny[2] = {0x80, 0};
    int16_t pcm[160] = {0};
    uint32_t verdict = 99;
    CHECK_RC(cardveil_call_process_rtp(call, 0, packet, sizeof packet, NULL), CARDVEIL_NULL_ARGUMENT);
    CHECK_RC(cardveil_call_process_rtp(call, 0, NULL, 12, &verdict), CARDVEIL_NULL_ARGUMENT);
    CHECK_RC(cardveil_call_process_rtp(call, 2, packet, sizeof packet, &verdict), CARDVEIL_INVALID_ARGUMENT);
    /* Not RTP and not recognised: fail closed (do not send). */
    CHECK_RC(cardveil_call_process_rtp(call, 1, tiny, sizeof tiny, &verdict), CARDVEIL_OK);
    CHECK(verdict == CARDVEIL_RTP_UNKNOWN);
    CHECK_RC(cardveil_call_process_rtp(call, 1, NULL, 0, &verdict), CARDVEIL_OK);
    CHECK(verdict == CARDVEIL_RTP_UNKNOWN);
    uint8_t v1[172] = {0x40, 0}, rtcp[8] = {0x80, 201, 0, 1, 1, 2, 3, 4};
    CHECK_RC(cardveil_call_process_rtp(call, 0, v1, sizeof v1, &verdict), CARDVEIL_OK);
    CHECK(verdict == CARDVEIL_RTP_UNKNOWN);
    /* An RTCP receiver report is recognised: it may pass. */
    CHECK_RC(cardveil_call_process_rtp(call, 0, rtcp, sizeof rtcp, &verdict), CARDVEIL_OK);
    CHECK(verdict == CARDVEIL_RTP_NOT_RTP);
    packet[1] = 9; /* G.722: cannot be inspected */
    CHECK_RC(cardveil_call_process_rtp(call, 1, packet, sizeof packet, &verdict), CARDVEIL_OK);
    CHECK(verdict == CARDVEIL_RTP_UNKNOWN);
    CHECK_RC(cardveil_call_process_pcm16(call, 0, pcm, 160), CARDVEIL_WRONG_API);
    CHECK_RC(cardveil_call_process_rtp(frames, 0, packet, sizeof packet, &verdict), CARDVEIL_WRONG_API);
    cardveil_call_free(call);
    cardveil_call_free(frames);
    cardveil_engine_free(e);
    c.two_phase = 1;
    e = engine_with(c);
    CHECK_RC(cardveil_call_new_rtp(e, NULL, 2026, 11, &call), CARDVEIL_INVALID_ARGUMENT);
    cardveil_engine_free(e);
    c = cardveil_engine_config_default(), c.sample_rate = 16000;
    e = engine_with(c);
    CHECK_RC(cardveil_call_new_rtp(e, NULL, 2026, 11, &call), CARDVEIL_INVALID_ARGUMENT);
    cardveil_engine_free(e);
}

/* ---- many calls on many threads, one shared engine ---- */

static cardveil_engine *shared;

static void *one_call(void *arg) {
    (void)arg;
    cardveil_call *call = NULL;
    if (cardveil_call_new(shared, 2026, 11, &call) != CARDVEIL_OK) return (void *)1;
    const char *keys = "5555555555554444#0130#789#";
    size_t n = dtmf_len(keys);
    int16_t *pcm = malloc(n * sizeof *pcm);
    dtmf_fill(keys, pcm);
    cardveil_call_capture_begin(call);
    int complete = 0;
    for (size_t at = 0; at < n; at += 160) {
        size_t len = n - at < 160 ? n - at : 160;
        if (cardveil_call_process_pcm16(call, CARDVEIL_CALLER_TO_AGENT, pcm + at, len) != CARDVEIL_OK) return (void *)2;
        cardveil_event ev;
        while (cardveil_call_poll_event(call, &ev) == CARDVEIL_OK) complete |= ev.kind == CARDVEIL_EVENT_COMPLETE;
    }
    cardveil_call_free(call);
    free(pcm);
    return complete ? NULL : (void *)3;
}

static void test_many_threads(void) {
    shared = engine_with(cardveil_engine_config_default());
    pthread_t t[8];
    for (int i = 0; i < 8; i++) pthread_create(&t[i], NULL, one_call, NULL);
    for (int i = 0; i < 8; i++) {
        void *r;
        pthread_join(t[i], &r);
        CHECK(r == NULL);
    }
    cardveil_engine_free(shared);
}

/* ---- random sequences of API calls with arbitrary buffers and lengths ---- */

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint64_t next(void) { rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17; return rng; }

static void test_random_sequences(void) {
    for (int round = 0; round < 50; round++) {
        cardveil_engine_config c = cardveil_engine_config_default();
        c.encoding = (uint32_t)(next() % 4);
        c.mask_mode = (uint32_t)(next() % 4);
        c.lookahead_ms = (uint32_t)(next() % 220);
        cardveil_engine *e = NULL;
        if (cardveil_engine_new(&c, &e) != CARDVEIL_OK) { CHECK(e == NULL); continue; }
        cardveil_call *calls[3] = {0};
        int16_t pcm[600];
        uint8_t codes[600];
        for (int step = 0; step < 300; step++) {
            int k = (int)(next() % 3);
            for (size_t i = 0; i < 600; i++) pcm[i] = (int16_t)next(), codes[i] = (uint8_t)next();
            size_t len = (size_t)(next() % 600);
            uint32_t dir = (uint32_t)(next() % 3);
            cardveil_event ev;
            char tok[8];
            size_t tl;
            switch (next() % 10) {
            case 0: if (!calls[k]) cardveil_call_new(e, 0, 0, &calls[k]); break;
            case 1: cardveil_call_free(calls[k]); calls[k] = NULL; break;
            case 2: cardveil_call_process_pcm16(calls[k], dir, pcm, len); break;
            case 3: cardveil_call_process_ulaw(calls[k], dir, codes, len); break;
            case 4: cardveil_call_process_alaw(calls[k], dir, codes, len); break;
            case 5: cardveil_call_capture_begin(calls[k]); break;
            case 6: cardveil_call_capture_cancel(calls[k]); break;
            case 7: cardveil_call_poll_event(calls[k], &ev); break;
            case 8: cardveil_call_token(calls[k], tok, sizeof tok, &tl); break;
            default: if (e) { cardveil_engine_free(e); e = NULL; } break;
            }
        }
        for (int k = 0; k < 3; k++) cardveil_call_free(calls[k]);
        cardveil_engine_free(e);
    }
}

int main(void) {
    test_basics_and_errors();
    test_capture_host_vault_threads();
    test_two_phase();
    test_rtp();
    test_many_threads();
    test_random_sequences();
    if (failures) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("test_api: all checks passed\n");
    return 0;
}
