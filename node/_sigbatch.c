/* Batch ed25519 verification with the GIL released once per batch (see node/sigbatch.py).
 *
 * PyNaCl's bindings release and re-acquire the GIL around every single verification.
 * While a node's main thread is executing a block (pure Python, holding the GIL), each of
 * those re-acquisitions waits for the interpreter's switch interval and forces a thread
 * switch. This module runs a whole batch inside one GIL release, and verifies it with one
 * multi-scalar multiplication (node/_edcurve.c), about 3x less work per signature than
 * one libsodium verification each.
 *
 * It takes libsodium's SHA-512 and scalar arithmetic through function pointers that
 * node/sigbatch.py passes to configure() from the libsodium PyNaCl loaded.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

#include "_edcurve.h"

#define SIGBATCH_ABI 2
#define SIG_LEN 64
#define PUBKEY_LEN 32

/* configure(sha512, scalar_reduce, scalar_mul, scalar_add, scalar_negate): addresses of
 * libsodium's crypto_hash_sha512 and crypto_core_ed25519_scalar_* functions. */
static PyObject *configure(PyObject *self, PyObject *args) {
    unsigned long long a[5];
    (void)self;
    if (!PyArg_ParseTuple(args, "KKKKK:configure", &a[0], &a[1], &a[2], &a[3], &a[4])) {
        return NULL;
    }
    for (int i = 0; i < 5; i++) {
        if (a[i] == 0) {
            PyErr_SetString(PyExc_ValueError, "null libsodium function");
            return NULL;
        }
    }
    edc_sodium fns;
    fns.sha512 = (int (*)(unsigned char *, const unsigned char *, unsigned long long))(uintptr_t)a[0];
    fns.scalar_reduce = (void (*)(unsigned char *, const unsigned char *))(uintptr_t)a[1];
    fns.scalar_mul = (void (*)(unsigned char *, const unsigned char *, const unsigned char *))(uintptr_t)a[2];
    fns.scalar_add = (void (*)(unsigned char *, const unsigned char *, const unsigned char *))(uintptr_t)a[3];
    fns.scalar_negate = (void (*)(unsigned char *, const unsigned char *))(uintptr_t)a[4];
    if (edc_init(&fns) != 0) {
        PyErr_SetString(PyExc_RuntimeError, "ed25519 constants failed their self-check");
        return NULL;
    }
    Py_RETURN_NONE;
}

/* verify_many(items: Sequence[tuple[bytes, bytes, bytes]]) -> bytes
 * items are (signature, message, public key); the result has one byte per item, 1 when
 * the signature is valid. Items of the wrong shape or lengths are invalid (0), as in
 * state.keys.verify. */
static PyObject *verify_many(PyObject *self, PyObject *items) {
    (void)self;
    /* A private tuple: its items (tuples of bytes, immutable) stay alive and unchanged
     * while the GIL is released, whatever other threads do with the caller's list. */
    PyObject *held = PySequence_Tuple(items);
    if (held == NULL) {
        return NULL;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(held);
    PyObject *out = PyBytes_FromStringAndSize(NULL, n);
    edc_item *jobs = PyMem_Malloc(sizeof(edc_item) * (size_t)(n > 0 ? n : 1));
    if (out == NULL || jobs == NULL) {
        Py_XDECREF(out);
        PyMem_Free(jobs);
        Py_DECREF(held);
        return PyErr_NoMemory();
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyTuple_GET_ITEM(held, i);
        jobs[i].sig = NULL;
        jobs[i].msg = NULL;
        jobs[i].len = 0;
        jobs[i].pk = NULL;
        if (!PyTuple_CheckExact(item) || PyTuple_GET_SIZE(item) != 3) {
            continue;
        }
        PyObject *sig = PyTuple_GET_ITEM(item, 0);
        PyObject *msg = PyTuple_GET_ITEM(item, 1);
        PyObject *pk = PyTuple_GET_ITEM(item, 2);
        if (!PyBytes_CheckExact(sig) || !PyBytes_CheckExact(msg) || !PyBytes_CheckExact(pk)) {
            continue;
        }
        if (PyBytes_GET_SIZE(sig) != SIG_LEN || PyBytes_GET_SIZE(pk) != PUBKEY_LEN) {
            continue;
        }
        jobs[i].sig = (const unsigned char *)PyBytes_AS_STRING(sig);
        jobs[i].msg = (const unsigned char *)PyBytes_AS_STRING(msg);
        jobs[i].len = (size_t)PyBytes_GET_SIZE(msg);
        jobs[i].pk = (const unsigned char *)PyBytes_AS_STRING(pk);
    }
    int status;
    Py_BEGIN_ALLOW_THREADS
    status = edc_verify_many(jobs, (size_t)n, (unsigned char *)PyBytes_AS_STRING(out));
    Py_END_ALLOW_THREADS
    PyMem_Free(jobs);
    Py_DECREF(held);
    if (status == EDC_NOT_READY) {
        Py_DECREF(out);
        PyErr_SetString(PyExc_RuntimeError, "node._sigbatch.configure() has not run");
        return NULL;
    }
    if (status != 0) {
        Py_DECREF(out);
        return PyErr_NoMemory();
    }
    return out;
}

static PyMethodDef methods[] = {
    {"configure", configure, METH_VARARGS,
     "configure(sha512, scalar_reduce, scalar_mul, scalar_add, scalar_negate): libsodium addresses."},
    {"verify_many", verify_many, METH_O,
     "verify_many(items) -> bytes: one byte per (sig, msg, pk), 1 if valid."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_sigbatch",
    "Batch ed25519 verification (one multi-scalar multiplication per batch, GIL released).", -1,
    methods,
};

PyMODINIT_FUNC PyInit__sigbatch(void) {
    PyObject *m = PyModule_Create(&module);
    if (m != NULL && PyModule_AddIntConstant(m, "ABI", SIGBATCH_ABI) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
