/* The real-time proof from C: run under LD_PRELOAD=alloc_probe.so, a frame
 * call and an RTP call each capture two cards (frames and packets on this
 * thread, events polled between them, tokens made on the engine's worker)
 * and not one malloc, calloc, realloc, free, pthread_mutex_lock or futex
 * call happens inside a frame or packet call. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>

#include "cardveil.h"
#include "dtmf.h"

static int32_t host_tokenize(void *user, const uint8_t *pan, size_t pan_len, const uint8_t *expiry, size_t expiry_len,
                             char *token_out, size_t token_cap) {
    (void)user, (void)expiry, (void)expiry_len;
    snprintf(token_out, token_cap, "t%c%c%c%c", pan[pan_len - 4], pan[pan_len - 3], pan[pan_len - 2], pan[pan_len - 1]);
    return 0;
}

int main(void) {
    unsigned long (*count)(void) = (unsigned long (*)(void))dlsym(RTLD_DEFAULT, "alloc_probe_count");
    unsigned long (*lock_count)(void) = (unsigned long (*)(void))dlsym(RTLD_DEFAULT, "lock_probe_count");
    if (!count || !lock_count) {
        fprintf(stderr, "test_rt: run me with LD_PRELOAD=build/alloc_probe.so\n");
        return 2;
    }
    cardveil_engine_config c = cardveil_engine_config_default();
    c.vault_kind = CARDVEIL_VAULT_HOST;
    c.host_tokenize = host_tokenize;
    c.mask_mode = CARDVEIL_MASK_NOISE;
    cardveil_engine *e = NULL;
    cardveil_call *call = NULL, *rtp = NULL;
    unsigned long setup = count();
    if (cardveil_engine_new(&c, &e) != CARDVEIL_OK || cardveil_call_new(e, 2026, 11, &call) != CARDVEIL_OK ||
        cardveil_call_new_rtp(e, NULL, 2026, 11, &rtp) != CARDVEIL_OK)
        return 1;
    if (count() == setup) {
        fprintf(stderr, "test_rt: the probe counted nothing during setup: it proves nothing\n");
        return 1;
    }
    const char *keys = "4111111111111111#1229#123#378282246310005#0729#1234#";
    size_t n = dtmf_len(keys);
    int16_t *pcm = malloc(n * sizeof *pcm);
    dtmf_fill(keys, pcm);
    cardveil_call_capture_begin(call);
    cardveil_call_capture_begin(rtp);
    unsigned long in_frames = 0, locks_in_frames = 0, frames = 0;
    int tokens = 0;
    uint8_t codes[160], packet[172];
    for (size_t at = 0; at < n; at += 160) {
        size_t len = n - at < 160 ? n - at : 160;
        for (size_t i = 0; i < len; i++) codes[i] = ulaw_encode(pcm[at + i]);
        size_t plen = rtp_packet(packet, 0, (uint16_t)(at / 160), (uint32_t)at, codes, len);
        uint32_t verdict;
        unsigned long before = count(), locks_before = lock_count();
        cardveil_result r1 = cardveil_call_process_pcm16(call, CARDVEIL_CALLER_TO_AGENT, pcm + at, len);
        cardveil_result r2 = cardveil_call_process_pcm16(call, CARDVEIL_AGENT_TO_CALLER, pcm + at, len);
        cardveil_result r3 = cardveil_call_process_rtp(rtp, CARDVEIL_CALLER_TO_AGENT, packet, plen, &verdict);
        in_frames += count() - before;
        locks_in_frames += lock_count() - locks_before;
        frames += 3;
        if (r1 != CARDVEIL_OK || r2 != CARDVEIL_OK || r3 != CARDVEIL_OK || verdict != CARDVEIL_RTP_FORWARD) return 1;
        cardveil_event ev;
        for (int k = 0; k < 2; k++) {
            cardveil_call *cl = k ? rtp : call;
            while (cardveil_call_poll_event(cl, &ev) == CARDVEIL_OK) {
                if (ev.kind == CARDVEIL_EVENT_COMPLETE) cardveil_call_capture_begin(cl);
                tokens += ev.kind == CARDVEIL_EVENT_TOKEN;
            }
        }
    }
    for (int i = 0; i < 30000 && tokens < 4; i++) { /* up to 30 s for the worker */
        if (i > 0) nanosleep(&(struct timespec){0, 1000000}, NULL);
        cardveil_event ev;
        while (cardveil_call_poll_event(call, &ev) == CARDVEIL_OK) tokens += ev.kind == CARDVEIL_EVENT_TOKEN;
        while (cardveil_call_poll_event(rtp, &ev) == CARDVEIL_OK) tokens += ev.kind == CARDVEIL_EVENT_TOKEN;
    }
    cardveil_call_free(call);
    cardveil_call_free(rtp);
    cardveil_engine_free(e);
    free(pcm);
    /* The probe must see both kinds of lock operation, or it proves nothing. */
    unsigned long l0 = lock_count();
    pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&m);
    pthread_mutex_unlock(&m);
    int word = 0;
    syscall(SYS_futex, &word, FUTEX_WAKE, 1, NULL, NULL, 0);
    if (lock_count() - l0 != 2) {
        fprintf(stderr, "test_rt: the probe did not count a mutex lock and a futex call: it proves nothing\n");
        return 1;
    }
    printf("test_rt: %lu frame calls, %lu allocator calls and %lu lock operations inside them, %d tokens\n", frames,
           in_frames, locks_in_frames, tokens);
    return in_frames == 0 && locks_in_frames == 0 && tokens == 4 ? 0 : 1;
}
