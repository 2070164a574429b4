/* Batch ed25519 verification with the GIL released once per batch (see node/sigbatch.py).
 *
 * PyNaCl's bindings release and re-acquire the GIL around every single verification.
 * While a node's main thread is executing a block (pure Python, holding the GIL), each of
 * those re-acquisitions waits for the interpreter's switch interval and forces a thread
 * switch, so verification threads spend more CPU on handing the GIL back and forth than on
 * elliptic curves. This module runs a whole batch inside one GIL release.
 *
 * It does no cryptography of its own: it calls libsodium's crypto_sign_verify_detached
 * through a function pointer that node/sigbatch.py takes from the libsodium PyNaCl loaded,
 * so the verification rule is exactly the one state/keys.py applies one signature at a time.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

#define SIGBATCH_ABI 1
#define SIG_LEN 64
#define PUBKEY_LEN 32

typedef int (*verify_detached_fn)(const unsigned char *sig, const unsigned char *m,
                                  unsigned long long mlen, const unsigned char *pk);

typedef struct {
    const unsigned char *sig;
    const unsigned char *msg;
    unsigned long long len;
    const unsigned char *pk;
} job_t;

/* verify_many(fn_address: int, items: Sequence[tuple[bytes, bytes, bytes]]) -> bytes
 * items are (signature, message, public key); the result has one byte per item, 1 when
 * the signature is valid. Items of the wrong shape or lengths are invalid (0), as in
 * state.keys.verify. */
static PyObject *verify_many(PyObject *self, PyObject *args) {
    unsigned long long address;
    PyObject *items;
    (void)self;
    if (!PyArg_ParseTuple(args, "KO:verify_many", &address, &items)) {
        return NULL;
    }
    if (address == 0) {
        PyErr_SetString(PyExc_ValueError, "null verification function");
        return NULL;
    }
    verify_detached_fn verify = (verify_detached_fn)(uintptr_t)address;
    /* A private tuple: its items (tuples of bytes, immutable) stay alive and unchanged
     * while the GIL is released, whatever other threads do with the caller's list. */
    PyObject *held = PySequence_Tuple(items);
    if (held == NULL) {
        return NULL;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(held);
    PyObject *out = PyBytes_FromStringAndSize(NULL, n);
    job_t *jobs = PyMem_Malloc(sizeof(job_t) * (size_t)(n > 0 ? n : 1));
    if (out == NULL || jobs == NULL) {
        Py_XDECREF(out);
        PyMem_Free(jobs);
        Py_DECREF(held);
        return PyErr_NoMemory();
    }
    char *result = PyBytes_AS_STRING(out);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyTuple_GET_ITEM(held, i);
        jobs[i].sig = NULL;
        result[i] = 0;
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
        jobs[i].len = (unsigned long long)PyBytes_GET_SIZE(msg);
        jobs[i].pk = (const unsigned char *)PyBytes_AS_STRING(pk);
    }
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        if (jobs[i].sig != NULL) {
            result[i] = verify(jobs[i].sig, jobs[i].msg, jobs[i].len, jobs[i].pk) == 0;
        }
    }
    Py_END_ALLOW_THREADS
    PyMem_Free(jobs);
    Py_DECREF(held);
    return out;
}

static PyMethodDef methods[] = {
    {"verify_many", verify_many, METH_VARARGS,
     "verify_many(fn_address, items) -> bytes: one byte per (sig, msg, pk), 1 if valid."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_sigbatch",
    "Batch ed25519 verification through libsodium with one GIL release per batch.", -1, methods,
};

PyMODINIT_FUNC PyInit__sigbatch(void) {
    PyObject *m = PyModule_Create(&module);
    if (m != NULL && PyModule_AddIntConstant(m, "ABI", SIGBATCH_ABI) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
