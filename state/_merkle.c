/* The state tree of state/merkle.py, in C: the same definitions, the same versions.
 *
 * Why: a block rewrites ~1.35 records per transaction and every write rehashes ~7 tree
 * nodes on its path (fewer near the root, where paths are shared). In Python each node
 * costs ~1.5 us of interpreter work around a 0.3 us hash, which alone would take more than
 * a third of apply_block's time; here a node costs its hash.
 *
 * Nodes are reference counted and immutable once built: update() returns a new version
 * that shares every unchanged subtree with the old one, which stays valid (a node keeps
 * the last few heights to prove against). The module holds the GIL throughout: versions
 * are dropped and proven from other Python code, and their counts are plain integers.
 *
 * In a tree larger than the cache (a million records: ~190 MB of nodes) the time goes to
 * memory, not hashing: update() and node_decref() walk breadth first with prefetches so
 * that the misses of a block's many paths overlap, and nodes come from fixed-size pools.
 *
 * SHA-256 is OpenSSL's compression function (SHA256_Transform, which uses the CPU's SHA
 * extensions where present), taken through function pointers that state/sha256_native.py
 * passes to init() from the libcrypto Python's hashlib loaded; init() checks the result
 * against OpenSSL's digest on every message length up to 300 bytes.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MERKLE_ABI 2 /* state/merkle.py's NATIVE_ABI */
#define H 32

/* OpenSSL's SHA256_CTX starts with the eight state words; SHA256_Transform runs the
 * compression function (its SHA-extension code where the CPU has it) on them for one
 * 64-byte block. Padding here, rather than SHA256_Update/Final, saves their bookkeeping,
 * which cost more than the compression for the tree's 65-byte messages. */
typedef struct {
    _Alignas(16) uint32_t h[8];
    unsigned char rest[224]; /* the remainder of SHA256_CTX (112 bytes in all), with room */
} sha_ctx;

static int (*sha_init)(void *);
static int (*sha_update)(void *, const void *, size_t);
static int (*sha_final)(unsigned char *, void *);
static void (*sha_transform)(void *, const unsigned char *);

static const uint32_t IV[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                               0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};

/* sha256 of a || b || c (b and c may be empty). */
static void sha256(unsigned char out[32], const unsigned char *a, size_t alen, const unsigned char *b,
                   size_t blen, const unsigned char *c, size_t clen) {
    sha_ctx ctx;
    unsigned char block[64];
    size_t fill = 0;
    const unsigned char *parts[3] = {a, b, c};
    size_t lens[3] = {alen, blen, clen};
    memcpy(ctx.h, IV, sizeof IV);
    for (int p = 0; p < 3; p++) {
        const unsigned char *src = parts[p];
        size_t len = lens[p];
        if (fill) {
            size_t take = 64 - fill < len ? 64 - fill : len;
            memcpy(block + fill, src, take);
            fill += take;
            src += take;
            len -= take;
            if (fill < 64) continue;
            sha_transform(&ctx, block);
            fill = 0;
        }
        while (len >= 64) {
            sha_transform(&ctx, src);
            src += 64;
            len -= 64;
        }
        memcpy(block, src, len);
        fill = len;
    }
    uint64_t bits = (uint64_t)(alen + blen + clen) * 8;
    block[fill++] = 0x80;
    if (fill > 56) {
        memset(block + fill, 0, 64 - fill);
        sha_transform(&ctx, block);
        fill = 0;
    }
    memset(block + fill, 0, 56 - fill);
    for (int i = 0; i < 8; i++) block[56 + i] = (unsigned char)(bits >> (56 - 8 * i));
    sha_transform(&ctx, block);
    for (int i = 0; i < 8; i++) {
        out[4 * i] = (unsigned char)(ctx.h[i] >> 24);
        out[4 * i + 1] = (unsigned char)(ctx.h[i] >> 16);
        out[4 * i + 2] = (unsigned char)(ctx.h[i] >> 8);
        out[4 * i + 3] = (unsigned char)ctx.h[i];
    }
}

/* OpenSSL's own one-call-per-step digest, to check sha256() against in init(). */
static void sha256_reference(unsigned char out[32], const unsigned char *data, size_t len) {
    sha_ctx ctx;
    sha_init(&ctx);
    sha_update(&ctx, data, len);
    sha_final(out, &ctx);
}

/* sha256(tag || a || b) for 32-byte a and b: a leaf's or an inner node's hash, the tree's
 * only hashing besides a write's key and value. The 65-byte message and its padding are
 * laid out once as two blocks: the general sha256() above spent as long assembling them
 * as the two compressions took. */
static void hash_pair(unsigned char out[H], unsigned char tag, const unsigned char *a, const unsigned char *b) {
    _Alignas(16) unsigned char block[128];
    sha_ctx ctx;
    block[0] = tag;
    memcpy(block + 1, a, H);
    memcpy(block + 1 + H, b, H);
    block[65] = 0x80;
    memset(block + 66, 0, 60);
    block[126] = (65 * 8) >> 8;
    block[127] = (65 * 8) & 0xff;
    memcpy(ctx.h, IV, sizeof IV);
    sha_transform(&ctx, block);
    sha_transform(&ctx, block + 64);
    for (int i = 0; i < 8; i++) { /* big-endian words (one bswap and store each on x86) */
        out[4 * i] = (unsigned char)(ctx.h[i] >> 24);
        out[4 * i + 1] = (unsigned char)(ctx.h[i] >> 16);
        out[4 * i + 2] = (unsigned char)(ctx.h[i] >> 8);
        out[4 * i + 3] = (unsigned char)ctx.h[i];
    }
}

static const unsigned char TAG_LEAF = 0x00, TAG_NODE = 0x01;
static const unsigned char EMPTY[H] = {0};

/* A node is an Inner or a Leaf; both start with this header. */
typedef struct Node {
    uint32_t refs;
    uint8_t inner;
    unsigned char hash[H];
} Node;

typedef struct {
    Node head;
    Node *left, *right;
} Inner;

typedef struct {
    Node head;
    unsigned char kh[H], vh[H];
} Leaf;

#define LEFT(n) (((Inner *)(n))->left)
#define RIGHT(n) (((Inner *)(n))->right)
#define KH(n) (((Leaf *)(n))->kh)
#define VH(n) (((Leaf *)(n))->vh)

/* Nodes come from two pools of fixed-size slots carved from 64-byte-aligned chunks: an
 * inner node is one cache line (hash and both children in it), a leaf two. Why: a block's
 * update walks most paths of a small tree and every path of a large one, so its time is
 * the cache misses on nodes it visits and the allocation of the nodes it replaces; with
 * general-purpose allocation (104 bytes each, scattered) the misses and the allocator took
 * more time than the hashing. A freed slot goes back to its pool for the next block's
 * nodes; chunks are kept for the life of the process (a node's tree size is steady). */
typedef struct Slot {
    struct Slot *next;
} Slot;

typedef struct {
    size_t size;
    Slot *free;
} Pool;

#define CHUNK_BYTES ((size_t)1 << 16)
static Pool inner_pool = {64, NULL}, leaf_pool = {128, NULL};

static void *pool_alloc(Pool *p) {
    if (p->free == NULL) {
        char *chunk = aligned_alloc(64, CHUNK_BYTES);
        if (chunk == NULL) return NULL;
        for (size_t off = CHUNK_BYTES; off >= p->size; off -= p->size) { /* pops in address order */
            Slot *slot = (Slot *)(chunk + off - p->size);
            slot->next = p->free;
            p->free = slot;
        }
    }
    Slot *slot = p->free;
    p->free = slot->next;
    return slot;
}

static void pool_free(Pool *p, void *x) {
    Slot *slot = x;
    slot->next = p->free;
    p->free = slot;
}

typedef struct {
    unsigned char kh[H];
    unsigned char vh[H];
    uint8_t present; /* 0: a delete */
    Py_ssize_t order; /* position in the write set: the last write of a key wins */
} Item;

/* Release one reference to `n`, one node at a time: the fallback of node_decref. */
static void node_decref_serial(Node *n) {
    while (n != NULL && --n->refs == 0) {
        Node *next = NULL;
        if (n->inner) {
            Node *left = LEFT(n);
            next = RIGHT(n); /* iterate on one side: bounded recursion either way */
            pool_free(&inner_pool, n);
            node_decref_serial(left);
        } else {
            pool_free(&leaf_pool, n);
        }
        n = next;
    }
}

#define RELEASE_RING 4096

/* Release one reference to `n`, freeing every node that no version holds any more.
 *
 * Breadth first through a ring of pending releases, each prefetched when queued: the nodes
 * a dropped version held alone are old and out of the cache, and a depth-first walk waited
 * for each in turn. A full ring hands the rest of a subtree to the serial walk. */
static void node_decref(Node *n) {
    Node *ring[RELEASE_RING];
    size_t head = 0, tail = 0;
    if (n == NULL) return;
    ring[tail++] = n;
    while (head != tail) {
        Node *x = ring[head++ % RELEASE_RING];
        if (--x->refs != 0) continue;
        if (!x->inner) {
            pool_free(&leaf_pool, x);
            continue;
        }
        Node *children[2] = {LEFT(x), RIGHT(x)};
        pool_free(&inner_pool, x);
        for (int c = 0; c < 2; c++) {
            if (children[c] == NULL) continue;
            if (tail - head == RELEASE_RING) {
                node_decref_serial(children[c]);
            } else {
                __builtin_prefetch(children[c], 1);
                ring[tail++ % RELEASE_RING] = children[c];
            }
        }
    }
}

static Node *node_incref(Node *n) {
    if (n != NULL) n->refs++;
    return n;
}

static Node *new_leaf(const unsigned char *kh, const unsigned char *vh) {
    Leaf *n = pool_alloc(&leaf_pool);
    if (n == NULL) return NULL;
    n->head.refs = 1;
    n->head.inner = 0;
    memcpy(n->kh, kh, H);
    memcpy(n->vh, vh, H);
    hash_pair(n->head.hash, TAG_LEAF, kh, vh);
    return &n->head;
}

static int bit_at(const unsigned char *kh, int depth) {
    return (kh[depth >> 3] >> (7 - (depth & 7))) & 1;
}

/* The first index in [lo, hi) whose kh has bit `depth` set (items share their first `depth`
 * bits and are sorted, so those with the bit clear come first). */
static Py_ssize_t split(const Item *it, Py_ssize_t lo, Py_ssize_t hi, int depth) {
    while (lo < hi) {
        Py_ssize_t mid = lo + (hi - lo) / 2;
        if (bit_at(it[mid].kh, depth)) hi = mid; else lo = mid + 1;
    }
    return lo;
}

/* Takes ownership of left and right. *failed is set on an allocation failure. */
static Node *join_known(Node *left, Node *right, int left_inner, int right_inner, const unsigned char *left_hash,
                        const unsigned char *right_hash, int *failed);

static Node *join(Node *left, Node *right, int *failed) {
    return join_known(left, right, left != NULL && left->inner, right != NULL && right->inner,
                      left ? left->hash : EMPTY, right ? right->hash : EMPTY, failed);
}

/* join() given what it reads of the children (whether each is an inner node, its hash), for
 * callers that hold them without touching the children's memory. */
static Node *join_known(Node *left, Node *right, int left_inner, int right_inner, const unsigned char *left_hash,
                        const unsigned char *right_hash, int *failed) {
    if (left == NULL && (right == NULL || !right_inner)) return right;
    if (right == NULL && !left_inner) return left;
    Inner *n = pool_alloc(&inner_pool);
    if (n == NULL) {
        node_decref(left);
        node_decref(right);
        *failed = 1;
        return NULL;
    }
    n->head.refs = 1;
    n->head.inner = 1;
    n->left = left;
    n->right = right;
    hash_pair(n->head.hash, TAG_NODE, left_hash, right_hash);
    return &n->head;
}

static Node *build(const Item *it, Py_ssize_t lo, Py_ssize_t hi, int depth, int *failed) {
    while (lo < hi && !it[lo].present) lo++;
    while (hi > lo && !it[hi - 1].present) hi--;
    if (lo == hi) return NULL;
    if (hi - lo == 1) {
        Node *n = new_leaf(it[lo].kh, it[lo].vh);
        if (n == NULL) *failed = 1;
        return n;
    }
    Py_ssize_t mid = split(it, lo, hi, depth);
    Node *left = build(it, lo, mid, depth + 1, failed);
    if (*failed) return NULL;
    Node *right = build(it, mid, hi, depth + 1, failed);
    if (*failed) {
        node_decref(left);
        return NULL;
    }
    return join(left, right, failed);
}

/* A leaf in the way of writes [lo, hi): the subtree of that leaf and the writes, built anew
 * (a write to the leaf's own key replaces it). A new reference; `leaf` is borrowed. */
static Node *merge_leaf(Node *leaf, const Item *it, Py_ssize_t lo, Py_ssize_t hi, int depth, int *failed) {
    if (hi - lo == 1 && memcmp(it[lo].kh, KH(leaf), H) == 0) { /* the common case: a record rewritten or deleted */
        if (!it[lo].present) return NULL;
        Node *out = new_leaf(it[lo].kh, it[lo].vh);
        if (out == NULL) *failed = 1;
        return out;
    }
    Item *merged = PyMem_Malloc(sizeof(Item) * (size_t)(hi - lo + 1));
    if (merged == NULL) {
        *failed = 1;
        return NULL;
    }
    Py_ssize_t at = lo;
    while (at < hi && memcmp(it[at].kh, KH(leaf), H) < 0) at++;
    memcpy(merged, it + lo, sizeof(Item) * (size_t)(at - lo));
    Py_ssize_t m = at - lo;
    if (at == hi || memcmp(it[at].kh, KH(leaf), H) != 0) {
        memcpy(merged[m].kh, KH(leaf), H);
        memcpy(merged[m].vh, VH(leaf), H);
        merged[m].present = 1;
        merged[m].order = 0;
        m++;
    }
    memcpy(merged + m, it + at, sizeof(Item) * (size_t)(hi - at));
    m += hi - at;
    Node *out = build(merged, 0, m, depth, failed);
    PyMem_Free(merged);
    return out;
}

/* One subtree the update visits: the old `node` (borrowed) and the writes [lo, hi) under it.
 * `left` indexes the task of its left child (the right one follows it), or is -1 when the
 * task ends here (no writes, an empty subtree or a leaf). */
typedef struct {
    Node *node;
    Py_ssize_t lo, hi, left;
    int depth;
    Node *result; /* the new subtree (a new reference): untouched ones on the way down, others up */
    uint8_t inner; /* an untouched subtree's kind and hash, read while its memory is at hand */
    unsigned char hash[H];
} Task;

/* Whether a child task's new subtree is an inner node, and its hash: from the task for an
 * untouched one, from the node (built moments ago) otherwise. */
static int task_inner(const Task *t) {
    return t->lo == t->hi ? t->inner : t->result != NULL && t->result->inner;
}

static const unsigned char *task_hash(const Task *t) {
    return t->lo == t->hi ? t->hash : t->result != NULL ? t->result->hash : EMPTY;
}

/* The version after writing items [0, n) into the tree at `root` (borrowed); NULL with
 * *failed set when memory ran out.
 *
 * Breadth first, then bottom up, rather than by recursion: each tree level's nodes are
 * found (and fetched from memory, by prefetch) while the level above is still being walked,
 * so the cache misses of a block's thousands of paths overlap instead of following one
 * another; in a tree larger than the cache they are most of the time. Tasks are created
 * level by level, so every task's children come after it and a reverse pass joins them. */
static Node *update(Node *root, const Item *it, Py_ssize_t n, int *failed) {
    Py_ssize_t cap = 64, count = 1;
    Task *tasks = PyMem_Malloc(sizeof(Task) * (size_t)cap);
    if (tasks == NULL) {
        *failed = 1;
        return NULL;
    }
    tasks[0] = (Task){root, 0, n, -1, 0, NULL};
    for (Py_ssize_t i = 0; i < count; i++) {
        Task t = tasks[i];
        if (t.lo == t.hi) { /* untouched: shared by the new version (its line was prefetched a level ago) */
            tasks[i].result = node_incref(t.node);
            tasks[i].inner = t.node != NULL && t.node->inner;
            memcpy(tasks[i].hash, t.node != NULL ? t.node->hash : EMPTY, H);
            continue;
        }
        if (t.node == NULL || !t.node->inner) continue;
        if (count + 2 > cap) {
            Task *grown = PyMem_Realloc(tasks, sizeof(Task) * (size_t)(cap * 2));
            if (grown == NULL) {
                *failed = 1;
                break;
            }
            tasks = grown;
            cap *= 2;
        }
        Py_ssize_t mid = split(it, t.lo, t.hi, t.depth);
        Node *left = LEFT(t.node), *right = RIGHT(t.node);
        __builtin_prefetch(left); /* both are read: a visited one for its kind, the other for its hash */
        __builtin_prefetch(right);
        tasks[count] = (Task){left, t.lo, mid, -1, t.depth + 1, NULL};
        tasks[count + 1] = (Task){right, mid, t.hi, -1, t.depth + 1, NULL};
        tasks[i].left = count;
        count += 2;
    }
    for (Py_ssize_t i = count - 1; i >= 0 && !*failed; i--) {
        Task *t = &tasks[i];
        if (t->left < 0) {
            if (t->lo == t->hi) continue; /* shared on the way down */
            if (t->node == NULL) t->result = build(it, t->lo, t->hi, t->depth, failed);
            else t->result = merge_leaf(t->node, it, t->lo, t->hi, t->depth, failed);
            continue;
        }
        Task *lt = &tasks[t->left], *rt = &tasks[t->left + 1];
        Node *left = lt->result, *right = rt->result;
        /* only deletes of absent keys; the child tasks hold the old children (the old node
         * itself is likely out of the cache by now) */
        if (left == lt->node && right == rt->node) {
            node_decref(left);
            node_decref(right);
            t->result = node_incref(t->node);
        } else {
            t->result = join_known(left, right, task_inner(lt), task_inner(rt), task_hash(lt), task_hash(rt), failed);
        }
        lt->result = rt->result = NULL; /* taken by the join (or given back) */
    }
    Node *out = tasks[0].result;
    if (*failed) { /* give back every subtree shared or built and not yet joined */
        for (Py_ssize_t j = 0; j < count; j++) node_decref(tasks[j].result);
        out = NULL;
    }
    PyMem_Free(tasks);
    return out;
}

/* ------------------------------------------------------------------ Python types */

typedef struct {
    PyObject_HEAD
    Node *root; /* never NULL: the empty tree is Python's None */
} VersionObject;

static void version_dealloc(VersionObject *self) {
    node_decref(self->root);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyTypeObject VersionType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "state._merkle.Version",
    .tp_basicsize = sizeof(VersionObject),
    .tp_dealloc = (destructor)version_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "An immutable version of the state tree.",
};

typedef struct {
    PyObject_HEAD
    Py_ssize_t n;
    Item *items; /* sorted by kh, one per key */
    PyObject *digests; /* tuple of (key, vh[:8] or b"") in write order, or None */
} BatchObject;

static void batch_dealloc(BatchObject *self) {
    PyMem_Free(self->items);
    Py_XDECREF(self->digests);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *batch_digests(BatchObject *self, void *closure) {
    (void)closure;
    return Py_NewRef(self->digests);
}

static PyGetSetDef batch_getset[] = {
    {"digests", (getter)batch_digests, NULL, "Each write as (key, sha256(value)[:8], b\"\" for a delete), in "
     "write order; None unless asked for.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static Py_ssize_t batch_len(BatchObject *self) {
    return self->n;
}

static PySequenceMethods batch_as_sequence = {.sq_length = (lenfunc)batch_len};

static PyTypeObject BatchType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "state._merkle.Batch",
    .tp_basicsize = sizeof(BatchObject),
    .tp_dealloc = (destructor)batch_dealloc,
    .tp_as_sequence = &batch_as_sequence,
    .tp_getset = batch_getset,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A write set hashed and sorted for update().",
};

static Node *root_of(PyObject *version) {
    return version == Py_None ? NULL : ((VersionObject *)version)->root;
}

static int check_version(PyObject *version) {
    if (version != Py_None && !PyObject_TypeCheck(version, &VersionType)) {
        PyErr_SetString(PyExc_TypeError, "expected a tree version or None");
        return -1;
    }
    return 0;
}

static PyObject *wrap(Node *root) {
    if (root == NULL) Py_RETURN_NONE;
    VersionObject *v = PyObject_New(VersionObject, &VersionType);
    if (v == NULL) {
        node_decref(root);
        return NULL;
    }
    v->root = root;
    return (PyObject *)v;
}

static int item_order(const void *a, const void *b) {
    const Item *x = a, *y = b;
    int c = memcmp(x->kh, y->kh, H);
    if (c) return c;
    return (x->order > y->order) - (x->order < y->order);
}

static int ready(void) {
    if (sha_transform == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "state._merkle.init() has not succeeded");
        return 0;
    }
    return 1;
}

/* hashed_writes(writes: Sequence[tuple[bytes, bytes | None]], digests: bool = False) -> Batch */
static PyObject *hashed_writes(PyObject *self, PyObject *args) {
    PyObject *writes;
    int want_digests = 0;
    (void)self;
    if (!PyArg_ParseTuple(args, "O|p:hashed_writes", &writes, &want_digests)) return NULL;
    if (!ready()) return NULL;
    PyObject *seq = PySequence_Fast(writes, "writes must be a sequence of (key, value) pairs");
    if (seq == NULL) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    BatchObject *batch = PyObject_New(BatchObject, &BatchType);
    if (batch == NULL) {
        Py_DECREF(seq);
        return NULL;
    }
    batch->n = 0;
    batch->digests = want_digests ? PyTuple_New(n) : Py_NewRef(Py_None);
    batch->items = PyMem_Malloc(sizeof(Item) * (size_t)(n > 0 ? n : 1));
    if (batch->items == NULL || batch->digests == NULL) {
        Py_DECREF(seq);
        Py_DECREF(batch);
        return PyErr_NoMemory();
    }
    PyObject **pairs = PySequence_Fast_ITEMS(seq);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *pair = pairs[i];
        if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2 || !PyBytes_Check(PyTuple_GET_ITEM(pair, 0))) {
            PyErr_SetString(PyExc_TypeError, "a write is a (bytes, bytes | None) pair");
            Py_DECREF(seq);
            Py_DECREF(batch);
            return NULL;
        }
        PyObject *key = PyTuple_GET_ITEM(pair, 0), *value = PyTuple_GET_ITEM(pair, 1);
        Item *item = &batch->items[i];
        sha256(item->kh, (const unsigned char *)PyBytes_AS_STRING(key), (size_t)PyBytes_GET_SIZE(key), NULL, 0, NULL, 0);
        item->order = i;
        if (value == Py_None) {
            item->present = 0;
            memset(item->vh, 0, H);
        } else if (PyBytes_Check(value)) {
            item->present = 1;
            sha256(item->vh, (const unsigned char *)PyBytes_AS_STRING(value), (size_t)PyBytes_GET_SIZE(value), NULL, 0,
                   NULL, 0);
        } else {
            PyErr_SetString(PyExc_TypeError, "a write's value is bytes or None");
            Py_DECREF(seq);
            Py_DECREF(batch);
            return NULL;
        }
        if (want_digests) {
            PyObject *digest = Py_BuildValue("(Oy#)", key, (const char *)item->vh, (Py_ssize_t)(item->present ? 8 : 0));
            if (digest == NULL) {
                Py_DECREF(seq);
                Py_DECREF(batch);
                return NULL;
            }
            PyTuple_SET_ITEM(batch->digests, i, digest);
        }
    }
    Py_DECREF(seq);
    qsort(batch->items, (size_t)n, sizeof(Item), item_order);
    Py_ssize_t kept = 0; /* one item per key: the last write */
    for (Py_ssize_t i = 0; i < n; i++) {
        if (kept > 0 && memcmp(batch->items[kept - 1].kh, batch->items[i].kh, H) == 0) {
            batch->items[kept - 1] = batch->items[i];
        } else {
            batch->items[kept++] = batch->items[i];
        }
    }
    batch->n = kept;
    return (PyObject *)batch;
}

/* update(version, batch) -> version */
static PyObject *py_update(PyObject *self, PyObject *args) {
    PyObject *version, *batch;
    (void)self;
    if (!PyArg_ParseTuple(args, "OO!:update", &version, &BatchType, &batch)) return NULL;
    if (check_version(version) < 0 || !ready()) return NULL;
    BatchObject *b = (BatchObject *)batch;
    int failed = 0;
    Node *root = update(root_of(version), b->items, b->n, &failed);
    if (failed) return PyErr_NoMemory();
    return wrap(root);
}

/* root(version) -> bytes */
static PyObject *py_root(PyObject *self, PyObject *version) {
    (void)self;
    if (check_version(version) < 0) return NULL;
    Node *root = root_of(version);
    return PyBytes_FromStringAndSize((const char *)(root ? root->hash : EMPTY), H);
}

/* prove(version, kh) -> (siblings: list[bytes], leaf: (kh, vh) | None) */
static PyObject *py_prove(PyObject *self, PyObject *args) {
    PyObject *version;
    const char *kh;
    Py_ssize_t khlen;
    (void)self;
    if (!PyArg_ParseTuple(args, "Oy#:prove", &version, &kh, &khlen)) return NULL;
    if (check_version(version) < 0) return NULL;
    if (khlen != H) {
        PyErr_SetString(PyExc_ValueError, "a key hash is 32 bytes");
        return NULL;
    }
    PyObject *siblings = PyList_New(0);
    if (siblings == NULL) return NULL;
    Node *n = root_of(version);
    int depth = 0;
    while (n != NULL && n->inner) {
        int right = bit_at((const unsigned char *)kh, depth);
        Node *sibling = right ? LEFT(n) : RIGHT(n);
        PyObject *h = PyBytes_FromStringAndSize((const char *)(sibling ? sibling->hash : EMPTY), H);
        if (h == NULL || PyList_Append(siblings, h) < 0) {
            Py_XDECREF(h);
            Py_DECREF(siblings);
            return NULL;
        }
        Py_DECREF(h);
        n = right ? RIGHT(n) : LEFT(n);
        depth++;
    }
    if (n == NULL) return Py_BuildValue("(NO)", siblings, Py_None);
    return Py_BuildValue("(N(y#y#))", siblings, (const char *)KH(n), (Py_ssize_t)H, (const char *)VH(n),
                         (Py_ssize_t)H);
}

/* init(SHA256_Init, SHA256_Update, SHA256_Final, SHA256_Transform) -> bool: whether the
 * tree's hashing agrees with OpenSSL's digest (and so with hashlib) on every length from 0 to
 * 300 bytes, which covers each padding case. */
static PyObject *py_init(PyObject *self, PyObject *args) {
    unsigned long long a[4];
    (void)self;
    if (!PyArg_ParseTuple(args, "KKKK:init", &a[0], &a[1], &a[2], &a[3])) return NULL;
    sha_transform = NULL;
    if (!a[0] || !a[1] || !a[2] || !a[3]) Py_RETURN_FALSE;
    sha_init = (int (*)(void *))(uintptr_t)a[0];
    sha_update = (int (*)(void *, const void *, size_t))(uintptr_t)a[1];
    sha_final = (int (*)(unsigned char *, void *))(uintptr_t)a[2];
    sha_transform = (void (*)(void *, const unsigned char *))(uintptr_t)a[3];
    unsigned char data[300], want[32], got[32];
    for (int i = 0; i < 300; i++) data[i] = (unsigned char)(i * 131 + 7);
    for (size_t len = 0; len <= 300; len++) {
        sha256_reference(want, data, len);
        size_t cut1 = len / 3, cut2 = len - len / 5;
        sha256(got, data, cut1, data + cut1, cut2 - cut1, data + cut2, len - cut2);
        if (memcmp(want, got, 32) != 0) {
            sha_transform = NULL;
            Py_RETURN_FALSE;
        }
    }
    for (int tag = 0; tag < 2; tag++) { /* and hash_pair's fixed layout */
        sha256_reference(want, data + tag, 65);
        hash_pair(got, data[tag], data + tag + 1, data + tag + 33);
        if (memcmp(want, got, 32) != 0) {
            sha_transform = NULL;
            Py_RETURN_FALSE;
        }
    }
    Py_RETURN_TRUE;
}

static PyMethodDef methods[] = {
    {"init", py_init, METH_VARARGS, "Take OpenSSL's SHA256_Init/Update/Final/Transform addresses; check them."},
    {"hashed_writes", hashed_writes, METH_VARARGS, "Hash and sort a write set for update() (and its digests)."},
    {"update", py_update, METH_VARARGS, "The version after applying a batch to a version."},
    {"root", py_root, METH_O, "A version's root hash."},
    {"prove", py_prove, METH_VARARGS, "Siblings along a key hash's path, and the leaf it ends at."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "state._merkle", NULL, -1, methods};

PyMODINIT_FUNC PyInit__merkle(void) {
    if (PyType_Ready(&VersionType) < 0 || PyType_Ready(&BatchType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    if (PyModule_AddIntConstant(m, "ABI", MERKLE_ABI) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
