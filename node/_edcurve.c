/* ed25519 batch verification under bookchain's signature rule.
 *
 * The rule (the same as state/sigrule.py, the reference every verifier is tested against):
 * a signature R || S by public key A on message M is valid when
 *   - S < L (the group order), A and R are canonical encodings of curve points (y < p, and
 *     the sign bit of x = 0 is not set), neither A nor R has small order, and
 *   - [8]([S]B - [k]A - R) = 0, where k = SHA-512(R || A || M) mod L.
 * That is libsodium's crypto_sign_verify_detached (the same encoding checks) with the
 * cofactored equation of RFC 8032 (section 5.1.7's "sufficient, but not required"
 * variant), which is what makes batch verification sound: every signature libsodium
 * accepts is accepted, and the only ones added are crafted with a small-order component
 * (no honest signer produces them).
 *
 * A batch of n signatures is checked with one multi-scalar multiplication:
 *   [8]( sum z_i R_i + sum (z_i k_i mod L) A_i - (sum z_i S_i mod L) B ) = 0
 * with 128-bit weights z_i. If every signature is valid the sum is 0; if one is not, the
 * sum is 0 with probability about 2**-128. The weights are derived from a SHA-512 of the
 * whole batch (signatures, keys and hashes), so a batch always gets the same answer and a
 * signer cannot choose them (Fiat-Shamir). When the batch check fails, each signature is
 * checked alone with the same equation (z = 1), so a bad signature costs about what
 * libsodium costs and never makes a good one fail.
 *
 * The multi-scalar multiplication is Straus's: all points share one chain of doublings,
 * each scalar is a width-5 NAF (8 precomputed odd multiples per point). Field elements
 * are 5 limbs of 51 bits multiplied with 128-bit products; points are in extended twisted
 * Edwards coordinates (RFC 8032, 5.1.4). Everything here is variable-time: it handles
 * public data only (signatures, keys, messages).
 *
 * Accounts sign many transactions with one key, so a key's decoded point and its table of
 * odd multiples are kept in a direct-mapped cache (KEY_CACHE_SLOTS entries, ~1.3 KB each,
 * under a mutex: verification threads share it). A key enters the cache only once it has
 * passed the rule's checks, so a hit skips them and the decoding (~30% of a batched
 * signature's cost).
 */
#include "_edcurve.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef unsigned __int128 u128;
typedef struct {
    uint64_t v[5];
} fe;

#define MASK51 ((uint64_t)0x7ffffffffffffULL)
#define BATCH_MAX 64   /* signatures per multi-scalar multiplication */
#define NAF_LEN 256
#define TABLE_SIZE 8   /* odd multiples P, 3P, ..., 15P */

/* ---------- field arithmetic modulo p = 2**255 - 19 ---------- */

static void fe_carry(fe *h) {
    uint64_t c;
    c = h->v[0] >> 51; h->v[0] &= MASK51; h->v[1] += c;
    c = h->v[1] >> 51; h->v[1] &= MASK51; h->v[2] += c;
    c = h->v[2] >> 51; h->v[2] &= MASK51; h->v[3] += c;
    c = h->v[3] >> 51; h->v[3] &= MASK51; h->v[4] += c;
    c = h->v[4] >> 51; h->v[4] &= MASK51; h->v[0] += 19 * c;
}

static void fe_set_small(fe *h, uint64_t x) {
    h->v[0] = x; h->v[1] = h->v[2] = h->v[3] = h->v[4] = 0;
}

static void fe_add(fe *h, const fe *f, const fe *g) {
    for (int i = 0; i < 5; i++) h->v[i] = f->v[i] + g->v[i];
    fe_carry(h);
}

/* f - g + 4p keeps every limb non-negative: inputs are carried (limbs below 2**52). */
static void fe_sub(fe *h, const fe *f, const fe *g) {
    h->v[0] = f->v[0] + 0x1fffffffffffb4ULL - g->v[0];
    for (int i = 1; i < 5; i++) h->v[i] = f->v[i] + 0x1ffffffffffffcULL - g->v[i];
    fe_carry(h);
}

static void fe_neg(fe *h, const fe *f) {
    fe zero;
    fe_set_small(&zero, 0);
    fe_sub(h, &zero, f);
}

static void fe_reduce_products(fe *h, u128 r0, u128 r1, u128 r2, u128 r3, u128 r4) {
    uint64_t c;
    r1 += (uint64_t)(r0 >> 51);
    r2 += (uint64_t)(r1 >> 51);
    r3 += (uint64_t)(r2 >> 51);
    r4 += (uint64_t)(r3 >> 51);
    c = (uint64_t)(r4 >> 51);
    h->v[0] = ((uint64_t)r0 & MASK51) + 19 * c;
    h->v[1] = (uint64_t)r1 & MASK51;
    h->v[2] = (uint64_t)r2 & MASK51;
    h->v[3] = (uint64_t)r3 & MASK51;
    h->v[4] = (uint64_t)r4 & MASK51;
    c = h->v[0] >> 51; h->v[0] &= MASK51; h->v[1] += c;
}

static void fe_mul(fe *h, const fe *f, const fe *g) {
    const uint64_t f0 = f->v[0], f1 = f->v[1], f2 = f->v[2], f3 = f->v[3], f4 = f->v[4];
    const uint64_t g0 = g->v[0], g1 = g->v[1], g2 = g->v[2], g3 = g->v[3], g4 = g->v[4];
    const uint64_t g1_19 = 19 * g1, g2_19 = 19 * g2, g3_19 = 19 * g3, g4_19 = 19 * g4;
    u128 r0 = (u128)f0 * g0 + (u128)f1 * g4_19 + (u128)f2 * g3_19 + (u128)f3 * g2_19 + (u128)f4 * g1_19;
    u128 r1 = (u128)f0 * g1 + (u128)f1 * g0 + (u128)f2 * g4_19 + (u128)f3 * g3_19 + (u128)f4 * g2_19;
    u128 r2 = (u128)f0 * g2 + (u128)f1 * g1 + (u128)f2 * g0 + (u128)f3 * g4_19 + (u128)f4 * g3_19;
    u128 r3 = (u128)f0 * g3 + (u128)f1 * g2 + (u128)f2 * g1 + (u128)f3 * g0 + (u128)f4 * g4_19;
    u128 r4 = (u128)f0 * g4 + (u128)f1 * g3 + (u128)f2 * g2 + (u128)f3 * g1 + (u128)f4 * g0;
    fe_reduce_products(h, r0, r1, r2, r3, r4);
}

static void fe_sq(fe *h, const fe *f) {
    const uint64_t f0 = f->v[0], f1 = f->v[1], f2 = f->v[2], f3 = f->v[3], f4 = f->v[4];
    const uint64_t f0_2 = 2 * f0, f1_2 = 2 * f1;
    const uint64_t f1_38 = 38 * f1, f2_38 = 38 * f2, f3_38 = 38 * f3, f3_19 = 19 * f3, f4_19 = 19 * f4;
    u128 r0 = (u128)f0 * f0 + (u128)f1_38 * f4 + (u128)f2_38 * f3;
    u128 r1 = (u128)f0_2 * f1 + (u128)f2_38 * f4 + (u128)f3_19 * f3;
    u128 r2 = (u128)f0_2 * f2 + (u128)f1 * f1 + (u128)f3_38 * f4;
    u128 r3 = (u128)f0_2 * f3 + (u128)f1_2 * f2 + (u128)f4_19 * f4;
    u128 r4 = (u128)f0_2 * f4 + (u128)f1_2 * f3 + (u128)f2 * f2;
    fe_reduce_products(h, r0, r1, r2, r3, r4);
}

static void fe_sq_times(fe *h, const fe *f, int n) {
    fe_sq(h, f);
    for (int i = 1; i < n; i++) fe_sq(h, h);
}

/* The 255 low bits of s, little-endian (bit 255, the sign of x, is ignored). */
static void fe_frombytes(fe *h, const unsigned char s[32]) {
    uint64_t x[4];
    for (int i = 0; i < 4; i++) {
        uint64_t w = 0;
        for (int j = 7; j >= 0; j--) w = (w << 8) | s[8 * i + j];
        x[i] = w;
    }
    h->v[0] = x[0] & MASK51;
    h->v[1] = ((x[0] >> 51) | (x[1] << 13)) & MASK51;
    h->v[2] = ((x[1] >> 38) | (x[2] << 26)) & MASK51;
    h->v[3] = ((x[2] >> 25) | (x[3] << 39)) & MASK51;
    h->v[4] = (x[3] >> 12) & MASK51;
}

/* The canonical encoding (value reduced below p). */
static void fe_tobytes(unsigned char s[32], const fe *f) {
    fe t = *f;
    fe_carry(&t);
    fe_carry(&t);
    /* now t < 2p: q = 1 exactly when t >= p, i.e. when t + 19 carries out of bit 255 */
    uint64_t q = (t.v[0] + 19) >> 51;
    q = (t.v[1] + q) >> 51;
    q = (t.v[2] + q) >> 51;
    q = (t.v[3] + q) >> 51;
    q = (t.v[4] + q) >> 51;
    t.v[0] += 19 * q;
    uint64_t c;
    c = t.v[0] >> 51; t.v[0] &= MASK51; t.v[1] += c;
    c = t.v[1] >> 51; t.v[1] &= MASK51; t.v[2] += c;
    c = t.v[2] >> 51; t.v[2] &= MASK51; t.v[3] += c;
    c = t.v[3] >> 51; t.v[3] &= MASK51; t.v[4] += c;
    t.v[4] &= MASK51; /* drops q * 2**255 */
    uint64_t x[4];
    x[0] = t.v[0] | (t.v[1] << 51);
    x[1] = (t.v[1] >> 13) | (t.v[2] << 38);
    x[2] = (t.v[2] >> 26) | (t.v[3] << 25);
    x[3] = (t.v[3] >> 39) | (t.v[4] << 12);
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 8; j++) s[8 * i + j] = (unsigned char)(x[i] >> (8 * j));
}

static int fe_iszero(const fe *f) {
    unsigned char s[32];
    unsigned char acc = 0;
    fe_tobytes(s, f);
    for (int i = 0; i < 32; i++) acc |= s[i];
    return acc == 0;
}

static int fe_isodd(const fe *f) {
    unsigned char s[32];
    fe_tobytes(s, f);
    return s[0] & 1;
}

/* f ** ((p - 5) / 8) = f ** (2**252 - 3) */
static void fe_pow22523(fe *out, const fe *f) {
    fe t0, t1, t2;
    fe_sq(&t0, f);                 /* 2 */
    fe_sq_times(&t1, &t0, 2);      /* 8 */
    fe_mul(&t1, f, &t1);           /* 9 */
    fe_mul(&t0, &t0, &t1);         /* 11 */
    fe_sq(&t0, &t0);               /* 22 */
    fe_mul(&t0, &t1, &t0);         /* 31 = 2**5 - 1 */
    fe_sq_times(&t1, &t0, 5);
    fe_mul(&t0, &t1, &t0);         /* 2**10 - 1 */
    fe_sq_times(&t1, &t0, 10);
    fe_mul(&t1, &t1, &t0);         /* 2**20 - 1 */
    fe_sq_times(&t2, &t1, 20);
    fe_mul(&t1, &t2, &t1);         /* 2**40 - 1 */
    fe_sq_times(&t1, &t1, 10);
    fe_mul(&t0, &t1, &t0);         /* 2**50 - 1 */
    fe_sq_times(&t1, &t0, 50);
    fe_mul(&t1, &t1, &t0);         /* 2**100 - 1 */
    fe_sq_times(&t2, &t1, 100);
    fe_mul(&t1, &t2, &t1);         /* 2**200 - 1 */
    fe_sq_times(&t1, &t1, 50);
    fe_mul(&t0, &t1, &t0);         /* 2**250 - 1 */
    fe_sq_times(&t0, &t0, 2);      /* 2**252 - 4 */
    fe_mul(out, &t0, f);           /* 2**252 - 3 */
}

/* 1 / f = f ** (p - 2) = (f ** (2**252 - 3)) ** 8 * f ** 3 */
static void fe_invert(fe *out, const fe *f) {
    fe t, f3;
    fe_pow22523(&t, f);
    fe_sq_times(&t, &t, 3);
    fe_sq(&f3, f);
    fe_mul(&f3, &f3, f);
    fe_mul(out, &t, &f3);
}

/* ---------- points ---------- */

typedef struct {
    fe X, Y, Z, T;  /* x = X/Z, y = Y/Z, xy = T/Z */
} ge_p3;

typedef struct {
    fe YpX, YmX, Z, T2d;  /* a point prepared for additions */
} ge_cached;

static fe FE_ONE, FE_D, FE_D2, FE_SQRTM1;
static ge_cached BASE_TABLE[TABLE_SIZE];
static edc_sodium SODIUM;
static int READY = 0;

/* The group order L = 2**252 + 27742317777372353535851937790883648493, little-endian. */
static const unsigned char ORDER[32] = {
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10,
};

/* The base point's encoding: y = 4/5, x even. */
static const unsigned char BASE_ENCODING[32] = {
    0x58, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66,
    0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66,
};

static void ge_identity(ge_p3 *h) {
    fe_set_small(&h->X, 0);
    fe_set_small(&h->Y, 1);
    fe_set_small(&h->Z, 1);
    fe_set_small(&h->T, 0);
}

static void ge_to_cached(ge_cached *c, const ge_p3 *p) {
    fe_add(&c->YpX, &p->Y, &p->X);
    fe_sub(&c->YmX, &p->Y, &p->X);
    c->Z = p->Z;
    fe_mul(&c->T2d, &p->T, &FE_D2);
}

/* r = p + q, or p - q when subtract is set (RFC 8032's addition for a = -1 with k = 2d;
 * complete on this curve). -q = (-x, y): its cached form swaps Y+X and Y-X and negates
 * 2dT, which swaps the roles of D - C and D + C. */
static void ge_add_or_sub(ge_p3 *r, const ge_p3 *p, const ge_cached *q, int subtract) {
    fe a, b, c, d, e, f, g, h;
    fe_sub(&a, &p->Y, &p->X);
    fe_mul(&a, &a, subtract ? &q->YpX : &q->YmX);
    fe_add(&b, &p->Y, &p->X);
    fe_mul(&b, &b, subtract ? &q->YmX : &q->YpX);
    fe_mul(&c, &p->T, &q->T2d);
    fe_mul(&d, &p->Z, &q->Z);
    fe_add(&d, &d, &d);
    fe_sub(&e, &b, &a);
    fe_add(&h, &b, &a);
    if (subtract) {
        fe_add(&f, &d, &c);
        fe_sub(&g, &d, &c);
    } else {
        fe_sub(&f, &d, &c);
        fe_add(&g, &d, &c);
    }
    fe_mul(&r->X, &e, &f);
    fe_mul(&r->Y, &g, &h);
    fe_mul(&r->T, &e, &h);
    fe_mul(&r->Z, &f, &g);
}

static void ge_add(ge_p3 *r, const ge_p3 *p, const ge_cached *q) {
    ge_add_or_sub(r, p, q, 0);
}

/* r = 2p (RFC 8032's doubling for a = -1) */
static void ge_dbl(ge_p3 *r, const ge_p3 *p) {
    fe a, b, c, e, f, g, h, t;
    fe_sq(&a, &p->X);
    fe_sq(&b, &p->Y);
    fe_sq(&c, &p->Z);
    fe_add(&c, &c, &c);
    fe_add(&h, &a, &b);
    fe_add(&t, &p->X, &p->Y);
    fe_sq(&t, &t);
    fe_sub(&e, &h, &t);
    fe_sub(&g, &a, &b);
    fe_add(&f, &c, &g);
    fe_mul(&r->X, &e, &f);
    fe_mul(&r->Y, &g, &h);
    fe_mul(&r->T, &e, &h);
    fe_mul(&r->Z, &f, &g);
}

static int ge_is_identity(const ge_p3 *p) {
    fe y_minus_z;
    fe_sub(&y_minus_z, &p->Y, &p->Z);
    return fe_iszero(&p->X) && fe_iszero(&y_minus_z);
}

/* [8]p is the identity: p is 0 after the cofactor. */
static int ge_is_identity_times_8(const ge_p3 *p) {
    ge_p3 t;
    ge_dbl(&t, p);
    ge_dbl(&t, &t);
    ge_dbl(&t, &t);
    return ge_is_identity(&t);
}

/* y < p, as a 255-bit little-endian number (the sign bit is not part of y). */
static int y_is_canonical(const unsigned char s[32]) {
    if ((s[31] & 0x7f) != 0x7f) return 1;
    for (int i = 30; i > 0; i--)
        if (s[i] != 0xff) return 1;
    return s[0] < 0xed;
}

static int scalar_is_canonical(const unsigned char s[32]) {
    for (int i = 31; i >= 0; i--) {
        if (s[i] < ORDER[i]) return 1;
        if (s[i] > ORDER[i]) return 0;
    }
    return 0; /* s == L */
}

/* Decodes a canonical point encoding (RFC 8032, 5.1.3). Returns -1 when y is not
 * canonical, when no x exists, or for the non-canonical sign of x = 0. */
static int ge_frombytes(ge_p3 *h, const unsigned char s[32]) {
    fe u, v, v3, vxx, check;
    if (!y_is_canonical(s)) return -1;
    fe_frombytes(&h->Y, s);
    fe_set_small(&h->Z, 1);
    fe_sq(&u, &h->Y);
    fe_mul(&v, &u, &FE_D);
    fe_sub(&u, &u, &FE_ONE);       /* u = y^2 - 1 */
    fe_add(&v, &v, &FE_ONE);       /* v = d y^2 + 1 */
    fe_sq(&v3, &v);
    fe_mul(&v3, &v3, &v);          /* v^3 */
    fe_sq(&h->X, &v3);
    fe_mul(&h->X, &h->X, &v);
    fe_mul(&h->X, &h->X, &u);      /* u v^7 */
    fe_pow22523(&h->X, &h->X);
    fe_mul(&h->X, &h->X, &v3);
    fe_mul(&h->X, &h->X, &u);      /* x = u v^3 (u v^7)^((p-5)/8) */
    fe_sq(&vxx, &h->X);
    fe_mul(&vxx, &vxx, &v);
    fe_sub(&check, &vxx, &u);
    if (!fe_iszero(&check)) {
        fe_add(&check, &vxx, &u);
        if (!fe_iszero(&check)) return -1;
        fe_mul(&h->X, &h->X, &FE_SQRTM1);
    }
    int sign = s[31] >> 7;
    unsigned char x[32], x_bits = 0;
    fe_tobytes(x, &h->X);
    for (int i = 0; i < 32; i++) x_bits |= x[i];
    if (x_bits == 0) {
        if (sign) return -1;
    } else if ((x[0] & 1) != sign) {
        fe_neg(&h->X, &h->X);
    }
    fe_mul(&h->T, &h->X, &h->Y);
    return 0;
}

/* table[i] = (2i + 1) p */
static void ge_odd_multiples(ge_cached table[TABLE_SIZE], const ge_p3 *p) {
    ge_p3 twice, acc = *p;
    ge_cached twice_cached;
    ge_dbl(&twice, p);
    ge_to_cached(&twice_cached, &twice);
    ge_to_cached(&table[0], p);
    for (int i = 1; i < TABLE_SIZE; i++) {
        ge_add(&acc, &acc, &twice_cached);
        ge_to_cached(&table[i], &acc);
    }
}

/* ---------- scalars ---------- */

/* The width-5 non-adjacent form of a scalar below 2**255: naf[i] is 0 or odd in [-15, 15],
 * sum naf[i] 2**i equals the scalar, and any two non-zero digits are 5 or more apart. */
static void scalar_naf(signed char naf[NAF_LEN], const unsigned char s[32]) {
    unsigned char bits[NAF_LEN + 8];
    memset(bits, 0, sizeof bits);
    for (int i = 0; i < NAF_LEN; i++) bits[i] = (s[i >> 3] >> (i & 7)) & 1;
    memset(naf, 0, NAF_LEN);
    int i = 0;
    while (i < NAF_LEN) {
        if (!bits[i]) {
            i++;
            continue;
        }
        int window = 0;
        for (int j = 0; j < 5; j++) window |= bits[i + j] << j;
        for (int j = 0; j < 5; j++) bits[i + j] = 0;
        if (window >= 16) {
            /* digit window - 32: subtracting it adds 32 at bit i, a carry into bit i + 5 */
            naf[i] = (signed char)(window - 32);
            int k = i + 5;
            while (bits[k]) bits[k++] = 0;
            bits[k] = 1;
        } else {
            naf[i] = (signed char)window;
        }
        i += 5;
    }
}

typedef struct {
    const ge_cached *table;
    signed char naf[NAF_LEN];
} msm_term;

/* sum of scalar_j * point_j, every point sharing one chain of doublings (Straus). */
static void msm(ge_p3 *out, const msm_term *terms, size_t n) {
    int top = -1;
    for (size_t j = 0; j < n; j++)
        for (int i = NAF_LEN - 1; i > top; i--)
            if (terms[j].naf[i]) {
                top = i;
                break;
            }
    ge_identity(out);
    for (int i = top; i >= 0; i--) {
        ge_dbl(out, out);
        for (size_t j = 0; j < n; j++) {
            int d = terms[j].naf[i];
            if (d > 0)
                ge_add(out, out, &terms[j].table[d >> 1]);
            else if (d < 0)
                ge_add_or_sub(out, out, &terms[j].table[(-d) >> 1], 1);
        }
    }
}

/* ---------- the key cache ---------- */

#define KEY_CACHE_SLOTS 8192 /* a power of two */

typedef struct {
    unsigned char pk[32];
    int used;
    ge_cached table[TABLE_SIZE];
} key_slot;

static key_slot KEY_CACHE[KEY_CACHE_SLOTS];
static pthread_mutex_t KEY_CACHE_LOCK = PTHREAD_MUTEX_INITIALIZER;

static size_t key_slot_index(const unsigned char pk[32]) {
    uint64_t h = 0;
    for (int i = 0; i < 8; i++) h = (h << 8) | pk[i];
    return (size_t)(h & (KEY_CACHE_SLOTS - 1));
}

/* Copies the cached table of pk's odd multiples into table; 0 when pk is not cached. */
static int key_cache_get(const unsigned char pk[32], ge_cached table[TABLE_SIZE]) {
    key_slot *slot = &KEY_CACHE[key_slot_index(pk)];
    int hit = 0;
    pthread_mutex_lock(&KEY_CACHE_LOCK);
    if (slot->used && memcmp(slot->pk, pk, 32) == 0) {
        memcpy(table, slot->table, sizeof slot->table);
        hit = 1;
    }
    pthread_mutex_unlock(&KEY_CACHE_LOCK);
    return hit;
}

static void key_cache_put(const unsigned char pk[32], const ge_cached table[TABLE_SIZE]) {
    key_slot *slot = &KEY_CACHE[key_slot_index(pk)];
    pthread_mutex_lock(&KEY_CACHE_LOCK);
    memcpy(slot->pk, pk, 32);
    memcpy(slot->table, table, sizeof slot->table);
    slot->used = 1;
    pthread_mutex_unlock(&KEY_CACHE_LOCK);
}

/* ---------- signatures ---------- */

typedef struct {
    ge_cached r_table[TABLE_SIZE];
    ge_cached a_table[TABLE_SIZE];
    unsigned char k[32]; /* SHA-512(R || A || M) mod L */
} prepared;

/* Decodes and checks the encodings of one signature and computes its k. Returns 0 when
 * the signature passes every check but the equation. */
static int prepare(prepared *p, const edc_item *item, unsigned char *scratch, size_t scratch_len) {
    const unsigned char *sig = item->sig;
    ge_p3 R, A;
    unsigned char digest[64];
    if (sig == NULL || !scalar_is_canonical(sig + 32)) return -1;
    int cached = key_cache_get(item->pk, p->a_table);
    /* small order: [8]P = 0 */
    if (!cached && (ge_frombytes(&A, item->pk) != 0 || ge_is_identity_times_8(&A))) return -1;
    if (ge_frombytes(&R, sig) != 0 || ge_is_identity_times_8(&R)) return -1;
    if (64 + item->len > scratch_len) return -1; /* the caller sizes scratch for the longest */
    memcpy(scratch, sig, 32);
    memcpy(scratch + 32, item->pk, 32);
    memcpy(scratch + 64, item->msg, item->len);
    SODIUM.sha512(digest, scratch, 64 + item->len);
    SODIUM.scalar_reduce(p->k, digest);
    ge_odd_multiples(p->r_table, &R);
    if (!cached) {
        ge_odd_multiples(p->a_table, &A);
        key_cache_put(item->pk, p->a_table);
    }
    return 0;
}

/* The equation for the prepared signatures idx[0..n) with weights z (16 bytes each; NULL
 * means the single-signature equation, weight 1). */
static int check_equation(prepared *const *ps, const unsigned char *const *sigs, size_t n,
                          const unsigned char *z, msm_term *terms) {
    unsigned char s_sum[32], weight[32], term[32], neg[32];
    memset(s_sum, 0, 32);
    for (size_t i = 0; i < n; i++) {
        const prepared *p = ps[i];
        memset(weight, 0, 32);
        if (z != NULL)
            memcpy(weight, z + 16 * i, 16);
        else
            weight[0] = 1;
        terms[2 * i].table = p->r_table;
        scalar_naf(terms[2 * i].naf, weight);
        SODIUM.scalar_mul(term, weight, p->k);
        terms[2 * i + 1].table = p->a_table;
        scalar_naf(terms[2 * i + 1].naf, term);
        SODIUM.scalar_mul(term, weight, sigs[i] + 32);
        SODIUM.scalar_add(s_sum, s_sum, term);
    }
    SODIUM.scalar_negate(neg, s_sum);
    terms[2 * n].table = BASE_TABLE;
    scalar_naf(terms[2 * n].naf, neg);
    ge_p3 sum;
    msm(&sum, terms, 2 * n + 1);
    return ge_is_identity_times_8(&sum);
}

/* 16-byte weights for n signatures: SHA-512 of the batch's R, A, S and k, then of that
 * digest with a counter, 4 weights per hash. */
static void derive_weights(unsigned char *z, prepared *const *ps, const unsigned char *const *sigs,
                           const unsigned char *const *pks, size_t n, unsigned char *buf) {
    unsigned char seed[64 + 8], block[64];
    for (size_t i = 0; i < n; i++) {
        memcpy(buf + 128 * i, sigs[i], 64);
        memcpy(buf + 128 * i + 64, pks[i], 32);
        memcpy(buf + 128 * i + 96, ps[i]->k, 32);
    }
    SODIUM.sha512(seed, buf, 128 * (unsigned long long)n);
    for (size_t i = 0; i < n; i += 4) {
        uint64_t counter = i / 4;
        for (int j = 0; j < 8; j++) seed[64 + j] = (unsigned char)(counter >> (8 * j));
        SODIUM.sha512(block, seed, sizeof seed);
        size_t take = n - i < 4 ? n - i : 4;
        memcpy(z + 16 * i, block, 16 * take);
    }
}

int edc_verify_many(const edc_item *items, size_t n, unsigned char *out) {
    if (!READY) return EDC_NOT_READY;
    size_t longest = 0;
    for (size_t i = 0; i < n; i++)
        if (items[i].sig != NULL && items[i].len > longest) longest = items[i].len;
    size_t batch = n == 0 ? 1 : n < BATCH_MAX ? n : BATCH_MAX; /* signatures per chunk */
    prepared *pool = malloc(sizeof(prepared) * batch);
    prepared **ps = malloc(sizeof(prepared *) * batch);
    const unsigned char **sigs = malloc(sizeof(unsigned char *) * batch);
    const unsigned char **pks = malloc(sizeof(unsigned char *) * batch);
    size_t *index = malloc(sizeof(size_t) * batch);
    msm_term *terms = malloc(sizeof(msm_term) * (2 * batch + 1));
    unsigned char *z = malloc(16 * batch);
    /* holds R || A || M for one signature, then R || S || A || k for the whole chunk */
    size_t scratch_len = 64 + longest > 128 * batch ? 64 + longest : 128 * batch;
    unsigned char *scratch = malloc(scratch_len);
    int status = 0;
    if (!pool || !ps || !sigs || !pks || !index || !terms || !z || !scratch) {
        status = EDC_NO_MEMORY;
        goto done;
    }
    for (size_t start = 0; start < n; start += BATCH_MAX) {
        size_t end = start + BATCH_MAX < n ? start + BATCH_MAX : n;
        size_t m = 0;
        for (size_t i = start; i < end; i++) {
            out[i] = 0;
            if (prepare(&pool[m], &items[i], scratch, scratch_len) != 0) continue;
            ps[m] = &pool[m];
            sigs[m] = items[i].sig;
            pks[m] = items[i].pk;
            index[m] = i;
            m++;
        }
        if (m == 0) continue;
        int all_valid;
        if (m == 1) {
            all_valid = check_equation(ps, sigs, 1, NULL, terms);
        } else {
            derive_weights(z, ps, sigs, pks, m, scratch);
            all_valid = check_equation(ps, sigs, m, z, terms);
        }
        for (size_t j = 0; j < m; j++) {
            if (all_valid || m == 1)
                out[index[j]] = (unsigned char)all_valid;
            else
                out[index[j]] = (unsigned char)check_equation(&ps[j], &sigs[j], 1, NULL, terms);
        }
    }
done:
    free(pool);
    free(ps);
    free(sigs);
    free(pks);
    free(index);
    free(terms);
    free(z);
    free(scratch);
    return status;
}

int edc_init(const edc_sodium *fns) {
    fe t;
    SODIUM = *fns;
    fe_set_small(&FE_ONE, 1);
    /* d = -121665 / 121666 */
    fe_set_small(&t, 121666);
    fe_invert(&t, &t);
    fe_set_small(&FE_D, 121665);
    fe_mul(&FE_D, &FE_D, &t);
    fe_neg(&FE_D, &FE_D);
    fe_add(&FE_D2, &FE_D, &FE_D);
    /* sqrt(-1) = 2 ** ((p - 1) / 4) = (2 ** (2**252 - 3)) ** 2 * 2 */
    fe_set_small(&t, 2);
    fe_pow22523(&FE_SQRTM1, &t);
    fe_sq(&FE_SQRTM1, &FE_SQRTM1);
    fe_add(&FE_SQRTM1, &FE_SQRTM1, &FE_SQRTM1);
    /* self-check: sqrt(-1)^2 = -1, and d y^2 + 1 is not 0 at the base point, which decodes */
    fe check;
    fe_sq(&check, &FE_SQRTM1);
    fe_add(&check, &check, &FE_ONE);
    if (!fe_iszero(&check)) return -1;
    ge_p3 base;
    if (ge_frombytes(&base, BASE_ENCODING) != 0 || fe_isodd(&base.X)) return -1;
    ge_odd_multiples(BASE_TABLE, &base);
    /* [L]B is the identity */
    msm_term *term = malloc(sizeof(msm_term));
    if (term == NULL) return -1;
    term->table = BASE_TABLE;
    scalar_naf(term->naf, ORDER);
    ge_p3 lb;
    msm(&lb, term, 1);
    free(term);
    if (!ge_is_identity(&lb)) return -1;
    READY = 1;
    return 0;
}
