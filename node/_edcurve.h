/* Batch verification of ed25519 signatures under bookchain's signature rule (see
 * node/_edcurve.c for the rule and the algorithm, node/sigbatch.py for why). */
#ifndef BOOKCHAIN_EDCURVE_H
#define BOOKCHAIN_EDCURVE_H

#include <stddef.h>
#include <stdint.h>

/* The libsodium functions the verifier uses for hashing and arithmetic modulo the group
 * order; node/sigbatch.py takes them from the libsodium PyNaCl loaded. */
typedef struct {
    int (*sha512)(unsigned char *out, const unsigned char *in, unsigned long long len);
    void (*scalar_reduce)(unsigned char *r, const unsigned char *s64);
    void (*scalar_mul)(unsigned char *z, const unsigned char *x, const unsigned char *y);
    void (*scalar_add)(unsigned char *z, const unsigned char *x, const unsigned char *y);
    void (*scalar_negate)(unsigned char *neg, const unsigned char *s);
} edc_sodium;

typedef struct {
    const unsigned char *sig; /* 64 bytes: R || S; NULL marks an item already invalid */
    const unsigned char *msg;
    size_t len;
    const unsigned char *pk; /* 32 bytes */
} edc_item;

/* Computes the curve constants and keeps the libsodium functions. Returns 0 on success, -1
 * when the self-check of the constants fails. Call once, holding the GIL, before any
 * edc_verify_many. */
int edc_init(const edc_sodium *fns);

#define EDC_NO_MEMORY (-1)
#define EDC_NOT_READY (-2) /* edc_init has not succeeded */

/* out[i] = 1 when items[i] is valid under the rule, 0 otherwise. Thread-safe after
 * edc_init; does not touch Python objects. Returns 0, or EDC_NO_MEMORY / EDC_NOT_READY
 * (out is then undefined). */
int edc_verify_many(const edc_item *items, size_t n, unsigned char *out);

#endif
