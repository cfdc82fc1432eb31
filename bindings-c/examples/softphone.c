/* A softphone in miniature: one thread plays a WAV file (8 kHz mono, PCM16 or
 * G.711 mu-law/A-law) through cardveil in 20 ms frames, as an audio callback
 * would; another thread is the agent's screen: it presses "take payment"
 * (starts a capture), prints the agent-safe events and finally the token.
 *
 *   softphone IN.wav VAULT.sqlite
 *
 * The vault is a SQLite file (created with a development key file beside it
 * on first use). Exit status 0 once a token was printed. */
#define _DEFAULT_SOURCE /* explicit_bzero */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cardveil.h"

struct wav { uint16_t format; uint16_t channels; uint32_t rate; uint16_t bits; uint8_t *data; size_t bytes; };

static uint32_t le32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

/* A minimal RIFF reader: the fmt and data chunks. */
static int read_wav(const char *path, struct wav *w, uint8_t **file) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    if (n < 12) { fclose(f); return -1; }
    *file = malloc((size_t)n);
    if (fread(*file, 1, (size_t)n, f) != (size_t)n) { fclose(f); return -1; }
    fclose(f);
    uint8_t *b = *file;
    if (memcmp(b, "RIFF", 4) || memcmp(b + 8, "WAVE", 4)) return -1;
    memset(w, 0, sizeof *w);
    for (size_t at = 12; at + 8 <= (size_t)n;) {
        uint32_t size = le32(b + at + 4);
        if (size > (size_t)n - at - 8) size = (uint32_t)((size_t)n - at - 8);
        if (!memcmp(b + at, "fmt ", 4) && size >= 16) {
            w->format = le16(b + at + 8), w->channels = le16(b + at + 10);
            w->rate = le32(b + at + 12), w->bits = le16(b + at + 22);
        } else if (!memcmp(b + at, "data", 4)) {
            w->data = b + at + 8, w->bytes = size;
        }
        at += 8 + size + (size & 1);
    }
    return w->data && w->format ? 0 : -1;
}

struct player { cardveil_call *call; struct wav *w; atomic_int done; };

/* The audio thread: 20 ms frames, in place. */
static void *play(void *arg) {
    struct player *p = arg;
    size_t bps = p->w->format == 1 ? 2 : 1, frame = 160 * bps;
    for (size_t at = 0; at < p->w->bytes; at += frame) {
        size_t n = (p->w->bytes - at < frame ? p->w->bytes - at : frame) / bps;
        cardveil_result rc;
        if (bps == 2) {
            int16_t pcm[160];
            memcpy(pcm, p->w->data + at, n * 2);
            rc = cardveil_call_process_pcm16(p->call, CARDVEIL_CALLER_TO_AGENT, pcm, n);
            memcpy(p->w->data + at, pcm, n * 2); /* what the agent hears */
        } else if (p->w->format == 7) {
            rc = cardveil_call_process_ulaw(p->call, CARDVEIL_CALLER_TO_AGENT, p->w->data + at, n);
        } else {
            rc = cardveil_call_process_alaw(p->call, CARDVEIL_CALLER_TO_AGENT, p->w->data + at, n);
        }
        if (rc != CARDVEIL_OK) {
            fprintf(stderr, "softphone: frame: %s\n", cardveil_result_str(rc));
            break;
        }
    }
    atomic_store(&p->done, 1);
    return NULL;
}

static const char *field_name(uint32_t f) {
    return f == CARDVEIL_FIELD_PAN ? "pan" : f == CARDVEIL_FIELD_EXPIRY ? "expiry" : f == CARDVEIL_FIELD_CVV ? "cvv" : "-";
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: softphone IN.wav VAULT.sqlite\n");
        return 2;
    }
    struct wav w;
    uint8_t *file = NULL;
    if (read_wav(argv[1], &w, &file) || w.rate != 8000 || w.channels != 1 ||
        !((w.format == 1 && w.bits == 16) || w.format == 6 || w.format == 7)) {
        fprintf(stderr, "softphone: %s: need an 8 kHz mono WAV, PCM16 or G.711\n", argv[1]);
        free(file);
        return 1;
    }
    cardveil_engine_config config = cardveil_engine_config_default();
    config.encoding = w.format == 1 ? CARDVEIL_ENCODING_PCM16 : w.format == 7 ? CARDVEIL_ENCODING_ULAW : CARDVEIL_ENCODING_ALAW;
    config.vault_kind = CARDVEIL_VAULT_SQLITE;
    config.vault_location = argv[2];
    config.actor = "softphone-example";
    cardveil_engine *engine = NULL;
    cardveil_result rc = cardveil_engine_new(&config, &engine);
    if (rc != CARDVEIL_OK) {
        fprintf(stderr, "softphone: engine: %s\n", cardveil_result_str(rc));
        free(file);
        return 1;
    }
    cardveil_call *call = NULL;
    rc = cardveil_call_new(engine, 0, 0, &call);
    cardveil_engine_free(engine); /* the call keeps it */
    if (rc != CARDVEIL_OK) {
        fprintf(stderr, "softphone: call: %s\n", cardveil_result_str(rc));
        free(file);
        return 1;
    }
    printf("%s: agent pressed \"take payment\"\n", cardveil_version());
    cardveil_call_capture_begin(call);
    struct player p = {call, &w, 0};
    pthread_t audio;
    pthread_create(&audio, NULL, play, &p);

    /* The agent's screen: poll until the token arrives (waiting up to 30 s once the audio ended). */
    int got_token = 0, idle_ms = 0;
    while (!got_token && idle_ms < 30000) {
        cardveil_event ev;
        if (cardveil_call_poll_event(call, &ev) != CARDVEIL_OK) {
            if (atomic_load(&p.done)) {
                nanosleep(&(struct timespec){0, 1000000}, NULL);
                idle_ms++;
            }
            continue;
        }
        switch (ev.kind) {
        case CARDVEIL_EVENT_FIELD_STARTED: printf("field %s: started\n", field_name(ev.field)); break;
        case CARDVEIL_EVENT_DIGIT: printf("field %s: %u digits\n", field_name(ev.field), ev.digits); break;
        case CARDVEIL_EVENT_VALID:
            if (ev.field == CARDVEIL_FIELD_PAN) printf("field pan: valid, brand %u, last four %s, %u digits\n", ev.brand, ev.last4, ev.digits);
            else printf("field %s: valid\n", field_name(ev.field));
            break;
        case CARDVEIL_EVENT_INVALID: printf("field %s: invalid (reason %u), %u tries left\n", field_name(ev.field), ev.reason, ev.retries_left); break;
        case CARDVEIL_EVENT_COMPLETE: printf("capture complete\n"); break;
        case CARDVEIL_EVENT_FAILED: printf("capture failed on %s\n", field_name(ev.field)); break;
        case CARDVEIL_EVENT_TOKEN: printf("token: %s\n", ev.token); got_token = 1; break;
        case CARDVEIL_EVENT_TOKEN_FAILED: printf("tokenization failed\n"); idle_ms = 30000; break;
        case CARDVEIL_EVENT_MASKED: break; /* a recorder would note the span */
        default: break;
        }
    }
    pthread_join(audio, NULL);
    char token[CARDVEIL_TOKEN_MAX];
    size_t len = 0;
    if (got_token && cardveil_call_token(call, token, sizeof token, &len) == CARDVEIL_OK) printf("the host stores %s (%zu characters)\n", token, len);
    /* The payment step takes the CVV once (held in memory only, 60 s); never print it. */
    char cvv[8];
    if (got_token && cardveil_call_take_cvv(call, cvv, sizeof cvv, &len) == CARDVEIL_OK) {
        printf("CVV taken for the payment request (%zu digits)\n", len);
        explicit_bzero(cvv, sizeof cvv); /* a memset the compiler may not drop */
    }
    cardveil_call_free(call);
    free(file);
    return got_token ? 0 : 1;
}
