/*
 * Optional compiled accelerator of the page-view hot path (beacon._speedups).
 *
 * record_pixel() does, in one call, what the pure-Python path of
 * beacon.app.Beacon._record_pixel does on a cache hit: read the User-Agent,
 * Referer and Host headers and the client address from the ASGI scope, look
 * up the page and agent parts in the caches of beacon.pageviews.PageviewEncoder,
 * compute the keyed BLAKE2b-64 visitor hash with the day's salt, and append
 * the RowBinary row to the open segment of the beacon.spool.Spool under the
 * spool's lock. Whenever anything differs from that common case (a cache
 * miss, a new day, a salt not settled yet, no open segment or one that is
 * full, a cap reached, an unexpected type), it changes nothing and returns
 * None: the Python path then does the work, as the definition of the row.
 * A Recorder is record_pixel() bound to one beacon's clock, encoder, salts
 * and spool, called with the scope alone (the beacon's hot path).
 *
 * BLAKE2b below is written from RFC 7693 ("The BLAKE2 Cryptographic Hash and
 * Message Authentication Code"), whose reference implementation is
 *   Copyright 2012, Samuel Neves <sneves@dei.uc.pt>. You may use this under
 *   the terms of the CC0, the OpenSSL Licence, or the Apache Public License
 *   2.0, at your option. (https://blake2.net)
 * It gives the same digests as hashlib.blake2b(data, digest_size=8, key=salt).
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#define SENDS_TYPE_NAME "beacon._speedups.PixelAnswer"
#include "asgi_sends.h"

/* ---- BLAKE2b (RFC 7693) ------------------------------------------------ */

#define B2B_BLOCK 128
#define B2B_MAX_KEY 64

typedef struct {
    uint64_t h[8];
    uint64_t t[2];
    uint8_t buf[B2B_BLOCK];
    size_t buflen;
} b2b_state;

static const uint64_t b2b_iv[8] = {
    0x6a09e667f3bcc908ULL, 0xbb67ae8584caa73bULL, 0x3c6ef372fe94f82bULL,
    0xa54ff53a5f1d36f1ULL, 0x510e527fade682d1ULL, 0x9b05688c2b3e6c1fULL,
    0x1f83d9abfb41bd6bULL, 0x5be0cd19137e2179ULL,
};

static const uint8_t b2b_sigma[12][16] = {
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
    {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3},
    {11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4},
    {7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8},
    {9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13},
    {2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9},
    {12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11},
    {13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10},
    {6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5},
    {10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0},
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
    {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3},
};

static inline uint64_t load64_le(const uint8_t *p) {
    return (uint64_t)p[0] | ((uint64_t)p[1] << 8) | ((uint64_t)p[2] << 16) |
           ((uint64_t)p[3] << 24) | ((uint64_t)p[4] << 32) | ((uint64_t)p[5] << 40) |
           ((uint64_t)p[6] << 48) | ((uint64_t)p[7] << 56);
}

static inline void store64_le(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static inline uint64_t rotr64(uint64_t x, unsigned n) { return (x >> n) | (x << (64 - n)); }

#define B2B_G(a, b, c, d, x, y)      \
    do {                             \
        v[a] = v[a] + v[b] + (x);    \
        v[d] = rotr64(v[d] ^ v[a], 32); \
        v[c] = v[c] + v[d];          \
        v[b] = rotr64(v[b] ^ v[c], 24); \
        v[a] = v[a] + v[b] + (y);    \
        v[d] = rotr64(v[d] ^ v[a], 16); \
        v[c] = v[c] + v[d];          \
        v[b] = rotr64(v[b] ^ v[c], 63); \
    } while (0)

static void b2b_compress(b2b_state *s, int last) {
    uint64_t v[16], m[16];
    for (int i = 0; i < 8; i++) {
        v[i] = s->h[i];
        v[i + 8] = b2b_iv[i];
    }
    v[12] ^= s->t[0];
    v[13] ^= s->t[1];
    if (last) {
        v[14] = ~v[14];
    }
    for (int i = 0; i < 16; i++) {
        m[i] = load64_le(s->buf + 8 * i);
    }
    for (int r = 0; r < 12; r++) {
        const uint8_t *z = b2b_sigma[r];
        B2B_G(0, 4, 8, 12, m[z[0]], m[z[1]]);
        B2B_G(1, 5, 9, 13, m[z[2]], m[z[3]]);
        B2B_G(2, 6, 10, 14, m[z[4]], m[z[5]]);
        B2B_G(3, 7, 11, 15, m[z[6]], m[z[7]]);
        B2B_G(0, 5, 10, 15, m[z[8]], m[z[9]]);
        B2B_G(1, 6, 11, 12, m[z[10]], m[z[11]]);
        B2B_G(2, 7, 8, 13, m[z[12]], m[z[13]]);
        B2B_G(3, 4, 9, 14, m[z[14]], m[z[15]]);
    }
    for (int i = 0; i < 8; i++) {
        s->h[i] ^= v[i] ^ v[i + 8];
    }
}

static void b2b_count(b2b_state *s, uint64_t n) {
    s->t[0] += n;
    if (s->t[0] < n) {
        s->t[1]++;
    }
}

/* The key fills the first block, compressed (as every block) only once more input follows. */
static void b2b_init(b2b_state *s, size_t outlen, const uint8_t *key, size_t keylen) {
    memcpy(s->h, b2b_iv, sizeof s->h);
    s->h[0] ^= 0x01010000ULL ^ ((uint64_t)keylen << 8) ^ (uint64_t)outlen;
    s->t[0] = s->t[1] = 0;
    s->buflen = 0;
    memset(s->buf, 0, sizeof s->buf);
    if (keylen > 0) {
        memcpy(s->buf, key, keylen);
        s->buflen = B2B_BLOCK;
    }
}

static void b2b_update(b2b_state *s, const uint8_t *in, size_t inlen) {
    while (inlen > 0) {
        if (s->buflen == B2B_BLOCK) {
            b2b_count(s, B2B_BLOCK);
            b2b_compress(s, 0);
            s->buflen = 0;
        }
        size_t take = B2B_BLOCK - s->buflen;
        if (take > inlen) {
            take = inlen;
        }
        memcpy(s->buf + s->buflen, in, take);
        s->buflen += take;
        in += take;
        inlen -= take;
    }
}

static void b2b_final(b2b_state *s, uint8_t *out, size_t outlen) {
    uint8_t full[64];
    b2b_count(s, s->buflen);
    memset(s->buf + s->buflen, 0, B2B_BLOCK - s->buflen);
    b2b_compress(s, 1);
    for (int i = 0; i < 8; i++) {
        store64_le(full + 8 * i, s->h[i]);
    }
    memcpy(out, full, outlen);
}

/* ---- the page-view hot path -------------------------------------------- */

#define DIGEST_SIZE 8
#define NS_PER_DAY 86400000000000LL
/* The caps of beacon.app.Beacon._record_pixel on the header values. */
#define MAX_USER_AGENT 512
#define MAX_REFERER 4096
#define MAX_HOST 256

static PyObject *str_pages, *str_agents, *str_site_bytes, *str_day_number, *str_day;
static PyObject *str_known, *str_lock, *str_open, *str_owner, *str_stats;
static PyObject *str_max_bytes, *str_max_line_bytes, *str_segment_max_bytes;
static PyObject *str_size, *str_offsets, *str_rows, *str_mapping;
static PyObject *str_bytes_used, *str_accepted, *str_dirty, *str_acquire, *str_release;
static PyObject *str_headers, *str_query_string, *str_client, *empty_bytes;
static PyObject *str_type, *str_start, *str_status, *str_body_type, *str_body, *status_ok;
static PyObject *str_method, *str_path, *str_root_path, *str_pixel_path;

/* The keyed state of the last salt seen (the GIL guards it: no call below releases it
 * between reading and using the cache). */
static PyObject *cached_salt;
/* time.time_ns, which a Recorder given it reads with clock_gettime() instead. */
static PyObject *system_time_ns;
static b2b_state cached_state;

/* obj.name as a C long long; 0 on success, -1 when absent or not an int (no error left). */
static int attr_ll(PyObject *obj, PyObject *name, long long *out) {
    PyObject *value = PyObject_GetAttr(obj, name);
    if (value == NULL) {
        PyErr_Clear();
        return -1;
    }
    int ok = PyLong_CheckExact(value);
    if (ok) {
        *out = PyLong_AsLongLong(value);
        if (*out == -1 && PyErr_Occurred()) {
            PyErr_Clear();
            ok = 0;
        }
    }
    Py_DECREF(value);
    return ok ? 0 : -1;
}

/* obj.name if its type is exactly `type` (a new reference), else NULL with no error left. */
static PyObject *attr_of(PyObject *obj, PyObject *name, PyTypeObject *type) {
    PyObject *value = PyObject_GetAttr(obj, name);
    if (value == NULL) {
        PyErr_Clear();
        return NULL;
    }
    if (Py_TYPE(value) != type) {
        Py_DECREF(value);
        return NULL;
    }
    return value;
}

static int set_ll(PyObject *obj, PyObject *name, long long value) {
    PyObject *number = PyLong_FromLongLong(value);
    if (number == NULL) {
        return -1;
    }
    int result = PyObject_SetAttr(obj, name, number);
    Py_DECREF(number);
    return result;
}

/* A header value cut to `limit` bytes, as bytes (a new reference). */
static PyObject *capped(PyObject *value, Py_ssize_t limit) {
    if (value == NULL) {
        return Py_NewRef(empty_bytes);
    }
    if (PyBytes_GET_SIZE(value) <= limit) {
        return Py_NewRef(value);
    }
    return PyBytes_FromStringAndSize(PyBytes_AS_STRING(value), limit);
}

/* A cached part: an exact tuple of two bytes objects. */
static int is_part(PyObject *part) {
    return part != NULL && PyTuple_CheckExact(part) && PyTuple_GET_SIZE(part) == 2 &&
           PyBytes_CheckExact(PyTuple_GET_ITEM(part, 0)) &&
           PyBytes_CheckExact(PyTuple_GET_ITEM(part, 1));
}

/* The client address as UTF-8 (borrowed from the str), or NULL to leave it to Python. */
static const char *client_address(PyObject *scope, Py_ssize_t *length) {
    PyObject *client = PyDict_GetItemWithError(scope, str_client);
    if (client == NULL || client == Py_None) {
        if (PyErr_Occurred()) {
            PyErr_Clear();
            return NULL;
        }
        *length = 0;
        return "";
    }
    if (!PyTuple_CheckExact(client) && !PyList_CheckExact(client)) {
        return NULL;
    }
    if (PySequence_Fast_GET_SIZE(client) == 0) {
        *length = 0;
        return "";
    }
    PyObject *peer = PySequence_Fast_GET_ITEM(client, 0);
    if (!PyUnicode_CheckExact(peer)) {
        return NULL;
    }
    const char *text = PyUnicode_AsUTF8AndSize(peer, length);
    if (text == NULL) {
        /* Lone surrogates: Python encodes them with surrogateescape. */
        PyErr_Clear();
    }
    return text;
}

/* ---- The spool's hot state as C fields ---------------------------------------------
 *
 * beacon.spool builds its counters (SpoolStats), the lock of a directory's appends
 * (AppendsLock) and the write position of a spool and of its open segment on the types
 * below when this module is there. Python reads and writes their fields as attributes,
 * as it does those of the pure-Python classes they stand for; an append here then reads
 * and writes plain C fields instead of looking up and allocating Python ints. */

/* A C long long field as an int attribute: the getter and setter of its PyGetSetDef, whose
 * closure is the field's offset. A value that is not an int (or does not fit) is refused
 * with TypeError (OverflowError) and the field left as it was. */
static PyObject *field_get(PyObject *self, void *offset) {
    return PyLong_FromLongLong(*(long long *)((char *)self + (size_t)offset));
}

static int field_set(PyObject *self, PyObject *value, void *offset) {
    if (value == NULL) {
        PyErr_SetString(PyExc_TypeError, "this counter cannot be deleted");
        return -1;
    }
    if (!PyLong_Check(value)) {
        PyErr_Format(PyExc_TypeError, "an int is required, not %.200s", Py_TYPE(value)->tp_name);
        return -1;
    }
    long long number = PyLong_AsLongLong(value);
    if (number == -1 && PyErr_Occurred()) {
        return -1;
    }
    *(long long *)((char *)self + (size_t)offset) = number;
    return 0;
}

#define LL_FIELD(name, type, field, doc)                                                     \
    { name, field_get, field_set, doc, (void *)offsetof(type, field) }

typedef struct {
    PyObject_HEAD
    long long accepted, dropped, write_errors, sealed, bytes_used;
} SpoolStatsObject;

static PyGetSetDef spool_stats_getset[] = {
    LL_FIELD("accepted", SpoolStatsObject, accepted, "Rows written."),
    LL_FIELD("dropped", SpoolStatsObject, dropped,
             "Rows refused (the spool full, a row too large, a segment that could not be made)."),
    LL_FIELD("write_errors", SpoolStatsObject, write_errors,
             "Segments that could not be made."),
    LL_FIELD("sealed", SpoolStatsObject, sealed, "Segments sealed."),
    LL_FIELD("bytes_used", SpoolStatsObject, bytes_used,
             "Bytes the directory's segments take."),
    {NULL},
};

/* What the counter types share: their fields are the LL_FIELD entries of their getset
 * table, read here by name and offset for the constructor, repr, == and as_dict(). */
static PyGetSetDef *counter_fields(PyObject *self) {
    for (PyTypeObject *type = Py_TYPE(self); type != NULL; type = type->tp_base) {
        if (type->tp_getset != NULL && type->tp_getset[0].get == field_get) {
            return type->tp_getset;
        }
    }
    return NULL;
}

static long long *counter_at(PyObject *self, const PyGetSetDef *field) {
    return (long long *)((char *)self + (size_t)field->closure);
}

static int counters_init(PyObject *self, PyObject *args, PyObject *kwargs) {
    PyGetSetDef *fields = counter_fields(self);
    Py_ssize_t given = PyTuple_GET_SIZE(args), count = 0;
    while (fields[count].name != NULL) {
        count++;
    }
    if (given > count) {
        PyErr_Format(PyExc_TypeError, "%.200s() takes at most %zd arguments (%zd given)",
                     Py_TYPE(self)->tp_name, count, given);
        return -1;
    }
    Py_ssize_t used = 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *value = i < given ? PyTuple_GET_ITEM(args, i) : NULL;
        if (kwargs != NULL) {
            PyObject *named = PyDict_GetItemString(kwargs, fields[i].name);
            if (named != NULL && value != NULL) {
                PyErr_Format(PyExc_TypeError, "%.200s() got multiple values for '%s'",
                             Py_TYPE(self)->tp_name, fields[i].name);
                return -1;
            }
            if (named != NULL) {
                value = named;
                used++;
            }
        }
        if (value != NULL) {
            if (field_set(self, value, fields[i].closure) < 0) {
                return -1;
            }
        } else {
            *counter_at(self, &fields[i]) = 0;
        }
    }
    if (kwargs != NULL && used != PyDict_GET_SIZE(kwargs)) {
        PyErr_Format(PyExc_TypeError, "%.200s() got an unexpected keyword argument",
                     Py_TYPE(self)->tp_name);
        return -1;
    }
    return 0;
}

static PyObject *counters_as_dict(PyObject *self, PyObject *Py_UNUSED(ignored)) {
    PyObject *result = PyDict_New();
    for (PyGetSetDef *field = counter_fields(self); result != NULL && field->name; field++) {
        PyObject *value = PyLong_FromLongLong(*counter_at(self, field));
        if (value == NULL || PyDict_SetItemString(result, field->name, value) < 0) {
            Py_XDECREF(value);
            Py_CLEAR(result);
        } else {
            Py_DECREF(value);
        }
    }
    return result;
}

static PyObject *counters_repr(PyObject *self) {
    PyObject *parts = PyList_New(0);
    PyObject *result = NULL;
    for (PyGetSetDef *field = counter_fields(self); parts != NULL && field->name; field++) {
        PyObject *part =
            PyUnicode_FromFormat("%s=%lld", field->name, *counter_at(self, field));
        if (part == NULL || PyList_Append(parts, part) < 0) {
            Py_XDECREF(part);
            Py_CLEAR(parts);
        } else {
            Py_DECREF(part);
        }
    }
    if (parts != NULL) {
        PyObject *separator = PyUnicode_FromString(", ");
        PyObject *joined = separator ? PyUnicode_Join(separator, parts) : NULL;
        if (joined != NULL) {
            const char *name = strrchr(Py_TYPE(self)->tp_name, '.');
            result = PyUnicode_FromFormat("%s(%U)", name ? name + 1 : Py_TYPE(self)->tp_name,
                                          joined);
        }
        Py_XDECREF(joined);
        Py_XDECREF(separator);
        Py_DECREF(parts);
    }
    return result;
}

static PyObject *counters_richcompare(PyObject *a, PyObject *b, int op) {
    if ((op != Py_EQ && op != Py_NE) || Py_TYPE(a) != Py_TYPE(b)) {
        Py_RETURN_NOTIMPLEMENTED;
    }
    int same = 1;
    for (PyGetSetDef *field = counter_fields(a); field->name; field++) {
        same &= *counter_at(a, field) == *counter_at(b, field);
    }
    return PyBool_FromLong(op == Py_EQ ? same : !same);
}

static PyMethodDef counters_methods[] = {
    {"as_dict", (PyCFunction)counters_as_dict, METH_NOARGS,
     "as_dict($self, /)\n--\n\nThe counters by name."},
    {NULL},
};

static PyTypeObject SpoolStatsType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "beacon._speedups.SpoolStats",
    .tp_doc = "SpoolStats(accepted=0, dropped=0, write_errors=0, sealed=0, bytes_used=0)\n--\n\n"
              "Counters of one spool directory (C integers, updated in place).",
    .tp_basicsize = sizeof(SpoolStatsObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = counters_init,
    .tp_repr = counters_repr,
    .tp_richcompare = counters_richcompare,
    .tp_hash = PyObject_HashNotImplemented,
    .tp_getset = spool_stats_getset,
    .tp_methods = counters_methods,
};

/* The request side's counters of a beacon (beacon.app.AppStats). */
typedef struct {
    PyObject_HEAD
    long long requests, recorded, not_consented, bad_requests, record_failures,
        housekeeping_failures;
} AppStatsObject;

static PyGetSetDef app_stats_getset[] = {
    LL_FIELD("requests", AppStatsObject, requests, "Requests to the beacon's own routes."),
    LL_FIELD("recorded", AppStatsObject, recorded, "Events spooled."),
    LL_FIELD("not_consented", AppStatsObject, not_consented,
             "Page views not recorded: analytics refused."),
    LL_FIELD("bad_requests", AppStatsObject, bad_requests, "Requests that could not be read."),
    LL_FIELD("record_failures", AppStatsObject, record_failures,
             "Events the spool refused (full, or a segment that could not be made)."),
    LL_FIELD("housekeeping_failures", AppStatsObject, housekeeping_failures,
             "Failed rounds of the background housekeeping."),
    {NULL},
};

static PyTypeObject AppStatsType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "beacon._speedups.AppStats",
    .tp_doc = "AppStats(requests=0, recorded=0, not_consented=0, bad_requests=0, "
              "record_failures=0, housekeeping_failures=0)\n--\n\n"
              "Counters of a beacon's request side (C integers, updated in place).",
    .tp_basicsize = sizeof(AppStatsObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = counters_init,
    .tp_repr = counters_repr,
    .tp_richcompare = counters_richcompare,
    .tp_hash = PyObject_HashNotImplemented,
    .tp_getset = app_stats_getset,
    .tp_methods = counters_methods,
};

/* The lock of a directory's appends: threading.Lock's methods, and a C lock the compiled
 * append takes without a call. */
typedef struct {
    PyObject_HEAD
    PyThread_type_lock lock;
    char locked;
} AppendsLockObject;

static PyObject *appends_lock_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    if (PyTuple_GET_SIZE(args) != 0 || (kwargs != NULL && PyDict_GET_SIZE(kwargs) != 0)) {
        PyErr_SetString(PyExc_TypeError, "AppendsLock() takes no arguments");
        return NULL;
    }
    AppendsLockObject *self = (AppendsLockObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->lock = PyThread_allocate_lock();
    if (self->lock == NULL) {
        Py_DECREF(self);
        PyErr_SetString(PyExc_MemoryError, "cannot allocate lock");
        return NULL;
    }
    return (PyObject *)self;
}

static void appends_lock_dealloc(AppendsLockObject *self) {
    if (self->lock != NULL) {
        if (self->locked) {
            PyThread_release_lock(self->lock);
        }
        PyThread_free_lock(self->lock);
    }
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Take the lock, waiting (other threads running) as long as `timeout_us` (-1: no limit);
 * 1 if taken, 0 if not. */
static int appends_lock_take(AppendsLockObject *self, PY_TIMEOUT_T timeout_us) {
    PyLockStatus status = PyThread_acquire_lock_timed(self->lock, 0, 0);
    if (status != PY_LOCK_ACQUIRED && timeout_us != 0) {
        Py_BEGIN_ALLOW_THREADS
        status = PyThread_acquire_lock_timed(self->lock, timeout_us, 0);
        Py_END_ALLOW_THREADS
    }
    if (status != PY_LOCK_ACQUIRED) {
        return 0;
    }
    self->locked = 1;
    return 1;
}

static void appends_lock_give(AppendsLockObject *self) {
    self->locked = 0;
    PyThread_release_lock(self->lock);
}

static PyObject *appends_lock_acquire(AppendsLockObject *self, PyObject *args, PyObject *kwargs) {
    static char *keywords[] = {"blocking", "timeout", NULL};
    int blocking = 1;
    double timeout = -1;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|pd:acquire", keywords, &blocking,
                                     &timeout)) {
        return NULL;
    }
    if (!blocking && timeout != -1) {
        PyErr_SetString(PyExc_ValueError, "can't specify a timeout for a non-blocking call");
        return NULL;
    }
    if (timeout < 0 && timeout != -1) {
        PyErr_SetString(PyExc_ValueError, "timeout value must be positive");
        return NULL;
    }
    PY_TIMEOUT_T wait = !blocking ? 0 : timeout < 0 ? -1 : (PY_TIMEOUT_T)(timeout * 1e6);
    if (blocking && timeout >= 0 && (timeout * 1e6 >= (double)PY_TIMEOUT_MAX)) {
        PyErr_SetString(PyExc_OverflowError, "timeout value is too large");
        return NULL;
    }
    return PyBool_FromLong(appends_lock_take(self, wait));
}

static PyObject *appends_lock_release(AppendsLockObject *self, PyObject *Py_UNUSED(ignored)) {
    if (!self->locked) {
        PyErr_SetString(PyExc_RuntimeError, "release unlocked lock");
        return NULL;
    }
    appends_lock_give(self);
    Py_RETURN_NONE;
}

static PyObject *appends_lock_enter(AppendsLockObject *self, PyObject *Py_UNUSED(ignored)) {
    appends_lock_take(self, -1);
    Py_RETURN_TRUE;
}

static PyObject *appends_lock_exit(AppendsLockObject *self, PyObject *const *args,
                                   Py_ssize_t nargs) {
    return appends_lock_release(self, NULL);
}

static PyObject *appends_lock_locked(AppendsLockObject *self, PyObject *Py_UNUSED(ignored)) {
    return PyBool_FromLong(self->locked);
}

static PyMethodDef appends_lock_methods[] = {
    {"acquire", (PyCFunction)(void (*)(void))appends_lock_acquire, METH_VARARGS | METH_KEYWORDS,
     "acquire($self, /, blocking=True, timeout=-1)\n--\n\n"
     "Take the lock, as threading.Lock.acquire does; whether it was taken."},
    {"release", (PyCFunction)appends_lock_release, METH_NOARGS,
     "release($self, /)\n--\n\nGive the lock back."},
    {"locked", (PyCFunction)appends_lock_locked, METH_NOARGS,
     "locked($self, /)\n--\n\nWhether the lock is held."},
    {"__enter__", (PyCFunction)appends_lock_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)(void (*)(void))appends_lock_exit, METH_FASTCALL, NULL},
    {NULL},
};

static PyTypeObject AppendsLockType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "beacon._speedups.AppendsLock",
    .tp_doc = "AppendsLock()\n--\n\n"
              "The lock of a spool directory's appends: a threading.Lock (acquire, release,\n"
              "locked, a context manager) that the compiled append takes without a call.",
    .tp_basicsize = sizeof(AppendsLockObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = appends_lock_new,
    .tp_dealloc = (destructor)appends_lock_dealloc,
    .tp_methods = appends_lock_methods,
};

/* The write position of a segment being written (the base of beacon.spool._OpenSegment),
 * and, while the segment is open, its mapping's memory (a buffer held). */
typedef struct {
    PyObject_HEAD
    long long size, rows, offsets;
    Py_buffer view;
    int held;
} SegmentFieldsObject;

static PyObject *segment_hold(SegmentFieldsObject *self, PyObject *mapping) {
    if (self->held) {
        PyErr_SetString(PyExc_RuntimeError, "the segment's mapping is held already");
        return NULL;
    }
    if (PyObject_GetBuffer(mapping, &self->view, PyBUF_WRITABLE) < 0) {
        return NULL;
    }
    self->held = 1;
    Py_RETURN_NONE;
}

static PyObject *segment_let_go(SegmentFieldsObject *self, PyObject *Py_UNUSED(ignored)) {
    if (self->held) {
        self->held = 0;
        PyBuffer_Release(&self->view);
    }
    Py_RETURN_NONE;
}

static void segment_dealloc(SegmentFieldsObject *self) {
    if (self->held) {
        self->held = 0;
        PyBuffer_Release(&self->view);
    }
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef segment_fields_methods[] = {
    {"hold", (PyCFunction)segment_hold, METH_O,
     "hold($self, mapping, /)\n--\n\n"
     "Keep the mapping's memory for the compiled append (until let_go(): the mapping\n"
     "cannot be closed meanwhile)."},
    {"let_go", (PyCFunction)segment_let_go, METH_NOARGS,
     "let_go($self, /)\n--\n\nGive the mapping's memory back (before closing it)."},
    {NULL},
};

static PyGetSetDef segment_fields_getset[] = {
    LL_FIELD("size", SegmentFieldsObject, size, "Bytes written."),
    LL_FIELD("rows", SegmentFieldsObject, rows, "Rows written (RowBinary segments)."),
    LL_FIELD("offsets", SegmentFieldsObject, offsets,
             "Where a RowBinary segment keeps its written and synced ends (0: none)."),
    {NULL},
};

static PyTypeObject SegmentFieldsType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "beacon._speedups.SegmentFields",
    .tp_doc = "The write position of a segment being written, as C fields.",
    .tp_basicsize = sizeof(SegmentFieldsObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_new = PyType_GenericNew,
    .tp_dealloc = (destructor)segment_dealloc,
    .tp_getset = segment_fields_getset,
    .tp_methods = segment_fields_methods,
};

/* A spool's open segment and whether it was written since its last flush (the base of
 * beacon.spool.Spool). */
typedef struct {
    PyObject_HEAD
    PyObject *open;
    char dirty;
} SpoolFieldsObject;

static int spool_fields_traverse(SpoolFieldsObject *self, visitproc visit, void *arg) {
    Py_VISIT(self->open);
    return 0;
}

static int spool_fields_clear(SpoolFieldsObject *self) {
    Py_CLEAR(self->open);
    return 0;
}

static void spool_fields_dealloc(SpoolFieldsObject *self) {
    PyObject_GC_UnTrack(self);
    spool_fields_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMemberDef spool_fields_members[] = {
    {"_open", T_OBJECT, offsetof(SpoolFieldsObject, open), 0,
     "The segment being written, or None."},
    {"_dirty", T_BOOL, offsetof(SpoolFieldsObject, dirty), 0,
     "Whether the open segment was written since its last flush."},
    {NULL},
};

static PyTypeObject SpoolFieldsType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "beacon._speedups.SpoolFields",
    .tp_doc = "A spool's open segment and whether it needs a flush, as C fields.",
    .tp_basicsize = sizeof(SpoolFieldsObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_traverse = (traverseproc)spool_fields_traverse,
    .tp_clear = (inquiry)spool_fields_clear,
    .tp_dealloc = (destructor)spool_fields_dealloc,
    .tp_members = spool_fields_members,
};

/* The bounds a directory's appends check (the base of beacon.spool.SpoolDir). */
typedef struct {
    PyObject_HEAD
    long long max_bytes, max_line_bytes, segment_max_bytes;
} SpoolDirFieldsObject;

static PyGetSetDef spool_dir_fields_getset[] = {
    LL_FIELD("max_bytes", SpoolDirFieldsObject, max_bytes,
             "The most bytes the directory's segments may take."),
    LL_FIELD("max_line_bytes", SpoolDirFieldsObject, max_line_bytes, "The longest row accepted."),
    LL_FIELD("segment_max_bytes", SpoolDirFieldsObject, segment_max_bytes,
             "The size at which a segment is sealed."),
    {NULL},
};

static PyTypeObject SpoolDirFieldsType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "beacon._speedups.SpoolDirFields",
    .tp_doc = "The bounds a spool directory's appends check, as C fields.",
    .tp_basicsize = sizeof(SpoolDirFieldsObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_new = PyType_GenericNew,
    .tp_getset = spool_dir_fields_getset,
};

/* The UTC day a page-view encoder is on (the base of beacon.pageviews.PageviewEncoder). */
typedef struct {
    PyObject_HEAD
    long long day_number;
    PyObject *day;
} EncoderFieldsObject;

static PyGetSetDef encoder_fields_getset[] = {
    LL_FIELD("_day_number", EncoderFieldsObject, day_number,
             "The UTC day of the last row, in days since the epoch (-1: none yet)."),
    {NULL},
};

static PyMemberDef encoder_fields_members[] = {
    {"_day", T_OBJECT, offsetof(EncoderFieldsObject, day), 0, "That day, as a date."},
    {NULL},
};

static int encoder_fields_traverse(EncoderFieldsObject *self, visitproc visit, void *arg) {
    Py_VISIT(self->day);
    return 0;
}

static int encoder_fields_clear(EncoderFieldsObject *self) {
    Py_CLEAR(self->day);
    return 0;
}

static void encoder_fields_dealloc(EncoderFieldsObject *self) {
    PyObject_GC_UnTrack(self);
    encoder_fields_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyTypeObject EncoderFieldsType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "beacon._speedups.EncoderFields",
    .tp_doc = "The UTC day a page-view encoder is on, as C fields.",
    .tp_basicsize = sizeof(EncoderFieldsObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_traverse = (traverseproc)encoder_fields_traverse,
    .tp_clear = (inquiry)encoder_fields_clear,
    .tp_dealloc = (destructor)encoder_fields_dealloc,
    .tp_getset = encoder_fields_getset,
    .tp_members = encoder_fields_members,
};

typedef struct {
    const char *data;
    Py_ssize_t size;
} chunk;

/* What a row needs of the encoder and the spool that stays the same for their life: the
 * encoder's two caches and its site, the spool's owner, the owner's counters and the
 * methods of the spool's lock. A Recorder reads them once; record_pixel() on every call. */
typedef struct {
    PyObject *pages, *agents, *site, *owner, *stats, *lock, *acquire, *release;
} fixed_parts;

static int parts_traverse(fixed_parts *parts, visitproc visit, void *arg) {
    Py_VISIT(parts->pages);
    Py_VISIT(parts->agents);
    Py_VISIT(parts->site);
    Py_VISIT(parts->owner);
    Py_VISIT(parts->stats);
    Py_VISIT(parts->lock);
    Py_VISIT(parts->acquire);
    Py_VISIT(parts->release);
    return 0;
}

static void parts_clear(fixed_parts *parts) {
    Py_CLEAR(parts->pages);
    Py_CLEAR(parts->agents);
    Py_CLEAR(parts->site);
    Py_CLEAR(parts->owner);
    Py_CLEAR(parts->stats);
    Py_CLEAR(parts->lock);
    Py_CLEAR(parts->acquire);
    Py_CLEAR(parts->release);
}

/* 0 with every part set (new references), -1 with none set and no error left: the
 * Python path then handles the request. */
/* obj.name (a new reference), or NULL with no error left; NULL when obj is. */
static PyObject *attr_or_null(PyObject *obj, PyObject *name) {
    PyObject *value = obj == NULL ? NULL : PyObject_GetAttr(obj, name);
    if (value == NULL) {
        PyErr_Clear();
    }
    return value;
}

static int parts_read(fixed_parts *parts, PyObject *encoder, PyObject *spool) {
    parts->pages = attr_of(encoder, str_pages, &PyDict_Type);
    parts->agents = attr_of(encoder, str_agents, &PyDict_Type);
    parts->site = attr_of(encoder, str_site_bytes, &PyBytes_Type);
    parts->owner = attr_or_null(spool, str_owner);
    parts->stats = attr_or_null(parts->owner, str_stats);
    parts->lock = attr_or_null(spool, str_lock);
    parts->acquire = attr_or_null(parts->lock, str_acquire);
    parts->release = attr_or_null(parts->lock, str_release);
    if (parts->pages == NULL || parts->agents == NULL || parts->site == NULL ||
        parts->owner == NULL || parts->stats == NULL || parts->lock == NULL ||
        parts->acquire == NULL ||
        parts->release == NULL) {
        parts_clear(parts);
        return -1;
    }
    return 0;
}

/* Append the row made of `chunks` to the spool's open segment, as Spool.append does:
 * 1 if appended, 0 if the Python path must decide (nothing changed), -1 on error. */
/* spool_append() for a spool built on the C fields above: the same checks and writes, on
 * C integers, under the C lock. */
static int spool_append_fields(SpoolFieldsObject *spool, const fixed_parts *parts,
                               const chunk chunks[], int count, long long size) {
    AppendsLockObject *lock = (AppendsLockObject *)parts->lock;
    SpoolStatsObject *stats = (SpoolStatsObject *)parts->stats;
    long long max_bytes, max_line_bytes, segment_max_bytes;
    PyObject *segment, *mapping;
    Py_buffer view;
    int status = 0;

    if (PyObject_TypeCheck(parts->owner, &SpoolDirFieldsType)) {
        SpoolDirFieldsObject *bounds = (SpoolDirFieldsObject *)parts->owner;
        max_bytes = bounds->max_bytes;
        max_line_bytes = bounds->max_line_bytes;
        segment_max_bytes = bounds->segment_max_bytes;
    } else if (attr_ll(parts->owner, str_max_bytes, &max_bytes) < 0 ||
               attr_ll(parts->owner, str_max_line_bytes, &max_line_bytes) < 0 ||
               attr_ll(parts->owner, str_segment_max_bytes, &segment_max_bytes) < 0) {
        return 0;
    }
    appends_lock_take(lock, -1);
    segment = spool->open;
    if (stats->bytes_used + size > max_bytes || size > max_line_bytes || segment == NULL ||
        !PyObject_TypeCheck(segment, &SegmentFieldsType)) {
        goto unlock;
    }
    SegmentFieldsObject *fields = (SegmentFieldsObject *)segment;
    long long offsets = fields->offsets, end = fields->size + size;
    if (end > segment_max_bytes) {
        goto unlock;
    }
    Py_INCREF(segment);
    mapping = NULL;
    if (fields->held) {
        view = fields->view;
    } else {
        mapping = PyObject_GetAttr(segment, str_mapping);
        if (mapping == NULL || PyObject_GetBuffer(mapping, &view, PyBUF_WRITABLE) < 0) {
            PyErr_Clear();
            goto release;
        }
    }
    if (fields->size < 0 || end > view.len || offsets < 0 ||
        (offsets && offsets + 16 > view.len)) {
        if (mapping != NULL) {
            PyBuffer_Release(&view);
        }
        goto release;
    }
    char *target = (char *)view.buf + fields->size;
    for (int i = 0; i < count; i++) {
        memcpy(target, chunks[i].data, (size_t)chunks[i].size);
        target += chunks[i].size;
    }
    if (offsets) {
        store64_le((uint8_t *)view.buf + offsets, (uint64_t)end);
        store64_le((uint8_t *)view.buf + offsets + 8, (uint64_t)(fields->rows + 1));
        fields->rows += 1;
    }
    if (mapping != NULL) {
        PyBuffer_Release(&view);
    }
    fields->size = end;
    stats->bytes_used += size;
    stats->accepted += 1;
    spool->dirty = 1;
    status = 1;
release:
    Py_XDECREF(mapping);
    Py_DECREF(segment);
unlock:
    appends_lock_give(lock);
    return status;
}

static int spool_append(PyObject *spool, const fixed_parts *parts, const chunk chunks[],
                        int count, long long size) {
    if (Py_IS_TYPE(parts->lock, &AppendsLockType) && Py_IS_TYPE(parts->stats, &SpoolStatsType) &&
        PyObject_TypeCheck(spool, &SpoolFieldsType)) {
        return spool_append_fields((SpoolFieldsObject *)spool, parts, chunks, count, size);
    }
    long long max_bytes, max_line_bytes, segment_max_bytes;
    long long bytes_used, accepted, segment_size, offsets, rows;
    PyObject *owner = parts->owner, *stats = parts->stats;
    PyObject *segment = NULL, *mapping = NULL;
    PyObject *done;
    Py_buffer view;
    int status = 0;

    if (attr_ll(owner, str_max_bytes, &max_bytes) < 0 ||
        attr_ll(owner, str_max_line_bytes, &max_line_bytes) < 0 ||
        attr_ll(owner, str_segment_max_bytes, &segment_max_bytes) < 0) {
        return 0;
    }
    done = PyObject_CallNoArgs(parts->acquire);
    if (done == NULL) {
        return -1;
    }
    Py_DECREF(done);
    if (attr_ll(stats, str_bytes_used, &bytes_used) < 0 ||
        attr_ll(stats, str_accepted, &accepted) < 0 || bytes_used + size > max_bytes ||
        size > max_line_bytes) {
        goto unlock;
    }
    segment = PyObject_GetAttr(spool, str_open);
    if (segment == NULL) {
        PyErr_Clear();
        goto unlock;
    }
    if (segment == Py_None || attr_ll(segment, str_size, &segment_size) < 0 ||
        segment_size + size > segment_max_bytes || attr_ll(segment, str_offsets, &offsets) < 0 ||
        attr_ll(segment, str_rows, &rows) < 0) {
        goto unlock;
    }
    mapping = PyObject_GetAttr(segment, str_mapping);
    if (mapping == NULL || PyObject_GetBuffer(mapping, &view, PyBUF_WRITABLE) < 0) {
        PyErr_Clear();
        goto unlock;
    }
    long long end = segment_size + size;
    if (segment_size < 0 || end > view.len || offsets < 0 || (offsets && offsets + 16 > view.len)) {
        PyBuffer_Release(&view);
        goto unlock;
    }
    char *target = (char *)view.buf + segment_size;
    for (int i = 0; i < count; i++) {
        memcpy(target, chunks[i].data, (size_t)chunks[i].size);
        target += chunks[i].size;
    }
    if (offsets) {
        store64_le((uint8_t *)view.buf + offsets, (uint64_t)end);
        store64_le((uint8_t *)view.buf + offsets + 8, (uint64_t)(rows + 1));
    }
    PyBuffer_Release(&view);
    if (set_ll(segment, str_size, end) < 0 ||
        (offsets && set_ll(segment, str_rows, rows + 1) < 0) ||
        set_ll(stats, str_bytes_used, bytes_used + size) < 0 ||
        set_ll(stats, str_accepted, accepted + 1) < 0 ||
        PyObject_SetAttr(spool, str_dirty, Py_True) < 0) {
        status = -1;
        goto unlock;
    }
    status = 1;
unlock:
    if (status < 0) {
        /* Release the lock with the error kept aside, then raise it. */
        PyObject *type, *value, *traceback;
        PyErr_Fetch(&type, &value, &traceback);
        done = PyObject_CallNoArgs(parts->release);
        Py_XDECREF(done);
        PyErr_Restore(type, value, traceback);
    } else {
        done = PyObject_CallNoArgs(parts->release);
        if (done == NULL) {
            status = -1;
        }
        Py_XDECREF(done);
    }
    Py_XDECREF(mapping);
    Py_XDECREF(segment);
    return status;
}

/* ---- the recorder's memo of cached parts ----------------------------------------------
 *
 * A Recorder keeps, next to the encoder's caches, a small table of the parts it found there
 * for recent (query, Referer, Host, User-Agent), each entry one block of C memory holding
 * the key and the parts' bytes: a repeated page view then reads that block instead of two
 * dict look-ups and the tuples and bytes objects they lead to. The parts are what the
 * encoder computes from the key alone, so an entry stays right for as long as it lives;
 * when either cache of the encoder is emptied the memo is emptied too, so that the
 * recorder never finds a part the encoder has let go. */

#define MEMO_SLOTS 64
/* Rows whose column runs take more go through the dict look-ups (long paths, campaigns). */
#define MEMO_ROW_BYTES 1024

typedef struct {
    uint64_t hash;
    /* the key: query, referer, host, user agent; then the parts: the agent as hashed,
     * the page's first and second columns, the agent's columns */
    Py_ssize_t length[8];
    char *data;
    Py_ssize_t capacity;
} memo_entry;

typedef struct {
    memo_entry slot[MEMO_SLOTS];
    Py_ssize_t pages_size, agents_size;
} memo_table;

static uint64_t memo_mix(uint64_t hash, const char *data, Py_ssize_t length) {
    hash ^= (uint64_t)length * 0x9E3779B97F4A7C15ULL;
    while (length >= 8) {
        uint64_t word;
        memcpy(&word, data, 8);
        hash = (hash ^ word) * 0xff51afd7ed558ccdULL;
        hash ^= hash >> 32;
        data += 8;
        length -= 8;
    }
    uint64_t word = 0;
    memcpy(&word, data, (size_t)length);
    hash = (hash ^ word) * 0xc4ceb9fe1a85ec53ULL;
    return hash ^ (hash >> 29);
}

static void memo_clear(memo_table *memo) {
    for (int i = 0; i < MEMO_SLOTS; i++) {
        memo->slot[i].hash = 0;
    }
}

static void memo_free(memo_table *memo) {
    for (int i = 0; i < MEMO_SLOTS; i++) {
        PyMem_Free(memo->slot[i].data);
        memo->slot[i].data = NULL;
        memo->slot[i].capacity = 0;
        memo->slot[i].hash = 0;
    }
}

/* Empty the memo if either cache of the encoder was emptied since the last call. */
static void memo_follow(memo_table *memo, PyObject *pages, PyObject *agents) {
    Py_ssize_t pages_size = PyDict_GET_SIZE(pages), agents_size = PyDict_GET_SIZE(agents);
    if (pages_size < memo->pages_size || agents_size < memo->agents_size) {
        memo_clear(memo);
    }
    memo->pages_size = pages_size;
    memo->agents_size = agents_size;
}

static uint64_t memo_hash(PyObject *const key[4]) {
    uint64_t hash = 0x243F6A8885A308D3ULL;
    for (int i = 0; i < 4; i++) {
        hash = memo_mix(hash, PyBytes_AS_STRING(key[i]), PyBytes_GET_SIZE(key[i]));
    }
    return hash | 1; /* 0 marks an empty slot */
}

/* The entry for the key (four bytes objects), or NULL. */
static const memo_entry *memo_find(const memo_table *memo, PyObject *const key[4],
                                   uint64_t hash) {
    const memo_entry *entry = &memo->slot[hash % MEMO_SLOTS];
    if (entry->hash != hash) {
        return NULL;
    }
    const char *data = entry->data;
    for (int i = 0; i < 4; i++) {
        Py_ssize_t length = PyBytes_GET_SIZE(key[i]);
        if (entry->length[i] != length || memcmp(data, PyBytes_AS_STRING(key[i]), length)) {
            return NULL;
        }
        data += length;
    }
    return entry;
}

/* Keep the parts found for the key (nothing kept if memory is short). */
static void memo_store(memo_table *memo, PyObject *const key[4], uint64_t hash, PyObject *page,
                       PyObject *agent) {
    PyObject *pieces[8] = {key[0], key[1], key[2], key[3], PyTuple_GET_ITEM(agent, 0),
                           PyTuple_GET_ITEM(page, 0), PyTuple_GET_ITEM(page, 1),
                           PyTuple_GET_ITEM(agent, 1)};
    memo_entry *entry = &memo->slot[hash % MEMO_SLOTS];
    Py_ssize_t total = 0;
    for (int i = 0; i < 8; i++) {
        total += PyBytes_GET_SIZE(pieces[i]);
    }
    entry->hash = 0;
    if (total > entry->capacity) {
        char *grown = PyMem_Realloc(entry->data, (size_t)total);
        if (grown == NULL) {
            return;
        }
        entry->data = grown;
        entry->capacity = total;
    }
    char *target = entry->data;
    for (int i = 0; i < 8; i++) {
        entry->length[i] = PyBytes_GET_SIZE(pieces[i]);
        memcpy(target, PyBytes_AS_STRING(pieces[i]), (size_t)entry->length[i]);
        target += entry->length[i];
    }
    entry->hash = hash;
}

PyDoc_STRVAR(record_pixel_doc,
             "record_pixel(scope, now_ns, encoder, salts, spool, ip=None, /)\n--\n\n"
             "Record a ``/p.gif`` request whose parts are all cached: ``True`` once its row is\n"
             "in the spool, ``None`` (nothing done) when the Python path must handle it.\n"
             "``ip`` is the client address when it is not the scope's (read from a proxy header).");

/* The work of record_pixel() and of a Recorder's call: True (a new reference) once the
 * row is in the spool, None when the Python path must handle the request, NULL on error. */
static PyObject *record(PyObject *scope, long long now_ns, PyObject *encoder, PyObject *salts,
                        PyObject *spool, PyObject *given_ip, const fixed_parts *parts,
                        memo_table *memo) {
    PyObject *agent_raw = NULL, *referer_raw = NULL, *host_raw = NULL;
    PyObject *agent_key = NULL, *referer = NULL, *host = NULL, *key = NULL;
    PyObject *pages = parts->pages, *agents = parts->agents, *site = parts->site;
    PyObject *day = NULL, *known = NULL;
    PyObject *page = NULL, *agent = NULL, *salt = NULL;
    PyObject *result = NULL;
    long long day_number, size = 0;
    b2b_state state;
    uint8_t stamp[8], digest[DIGEST_SIZE];
    chunk chunks[5];
    int status;

    if (now_ns < 0 || !PyDict_CheckExact(scope)) {
        Py_RETURN_NONE;
    }
    EncoderFieldsObject *encoder_fields = PyObject_TypeCheck(encoder, &EncoderFieldsType)
                                              ? (EncoderFieldsObject *)encoder
                                              : NULL;
    if (encoder_fields != NULL) {
        day_number = encoder_fields->day_number;
    } else if (attr_ll(encoder, str_day_number, &day_number) < 0) {
        Py_RETURN_NONE;
    }
    if (day_number != now_ns / NS_PER_DAY) {
        Py_RETURN_NONE;
    }

    /* The headers, as dict(scope["headers"]) reads them: the last value of a name wins. */
    PyObject *headers = PyDict_GetItemWithError(scope, str_headers);
    if (headers == NULL || !(PyList_CheckExact(headers) || PyTuple_CheckExact(headers))) {
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    Py_ssize_t count = PySequence_Fast_GET_SIZE(headers);
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *item = PySequence_Fast_GET_ITEM(headers, i);
        if (!PyTuple_CheckExact(item) || PyTuple_GET_SIZE(item) != 2 ||
            !PyBytes_CheckExact(PyTuple_GET_ITEM(item, 0)) ||
            !PyBytes_CheckExact(PyTuple_GET_ITEM(item, 1))) {
            Py_RETURN_NONE;
        }
        PyObject *name = PyTuple_GET_ITEM(item, 0);
        Py_ssize_t length = PyBytes_GET_SIZE(name);
        const char *text = PyBytes_AS_STRING(name);
        if (length == 10 && memcmp(text, "user-agent", 10) == 0) {
            agent_raw = PyTuple_GET_ITEM(item, 1);
        } else if (length == 7 && memcmp(text, "referer", 7) == 0) {
            referer_raw = PyTuple_GET_ITEM(item, 1);
        } else if (length == 4 && memcmp(text, "host", 4) == 0) {
            host_raw = PyTuple_GET_ITEM(item, 1);
        }
    }
    PyObject *query = PyDict_GetItemWithError(scope, str_query_string);
    if (query == NULL) {
        if (PyErr_Occurred()) {
            PyErr_Clear();
            Py_RETURN_NONE;
        }
        query = empty_bytes;
    } else if (!PyBytes_CheckExact(query)) {
        Py_RETURN_NONE;
    }
    Py_ssize_t ip_length;
    const char *ip;
    if (given_ip == Py_None) {
        ip = client_address(scope, &ip_length);
    } else if (PyUnicode_CheckExact(given_ip)) {
        ip = PyUnicode_AsUTF8AndSize(given_ip, &ip_length);
        if (ip == NULL) {
            /* Lone surrogates: Python encodes them with surrogateescape. */
            PyErr_Clear();
        }
    } else {
        ip = NULL;
    }
    if (ip == NULL) {
        Py_RETURN_NONE;
    }
    /* Held while the spool's lock may let other threads run (and touch the caches). */
    Py_INCREF(query);
    agent_key = capped(agent_raw, MAX_USER_AGENT);
    referer = capped(referer_raw, MAX_REFERER);
    host = capped(host_raw, MAX_HOST);
    if (agent_key == NULL || referer == NULL || host == NULL) {
        goto miss;
    }

    day = encoder_fields != NULL ? Py_XNewRef(encoder_fields->day)
                                 : PyObject_GetAttr(encoder, str_day);
    known = attr_of(salts, str_known, &PyDict_Type);
    if (day == NULL || known == NULL) {
        goto miss;
    }
    salt = Py_XNewRef(PyDict_GetItemWithError(known, day));
    if (salt == NULL || !PyBytes_CheckExact(salt) || PyBytes_GET_SIZE(salt) > B2B_MAX_KEY) {
        goto miss;
    }
    /* The parts: the agent as hashed, the page's two column runs, the agent's columns. */
    chunk hashed_agent, page_head, page_tail, agent_columns;
    PyObject *memo_key[4] = {query, referer, host, agent_key};
    uint64_t memo_key_hash = 0;
    const memo_entry *found = NULL;
    if (memo != NULL) {
        memo_follow(memo, pages, agents);
        memo_key_hash = memo_hash(memo_key);
        found = memo_find(memo, memo_key, memo_key_hash);
    }
    /* The column runs are copied out of the memo: waiting for the spool's lock lets other
     * threads run, whose page views may replace the entry meanwhile. */
    char copied[MEMO_ROW_BYTES];
    if (found != NULL &&
        found->length[5] + found->length[6] + found->length[7] > (Py_ssize_t)sizeof copied) {
        found = NULL;
    }
    if (found != NULL) {
        const char *data = found->data;
        Py_ssize_t offset = 0;
        for (int i = 0; i < 4; i++) {
            offset += found->length[i];
        }
        /* Read by the hash below, before anything can let another thread run. */
        hashed_agent = (chunk){data + offset, found->length[4]};
        offset += found->length[4];
        char *target = copied;
        chunk *runs[3] = {&page_head, &page_tail, &agent_columns};
        for (int i = 0; i < 3; i++) {
            Py_ssize_t length = found->length[5 + i];
            memcpy(target, data + offset, (size_t)length);
            *runs[i] = (chunk){target, length};
            target += length;
            offset += length;
        }
    } else {
        key = PyTuple_Pack(3, query, referer, host);
        if (key == NULL) {
            goto miss;
        }
        page = Py_XNewRef(PyDict_GetItemWithError(pages, key));
        agent = Py_XNewRef(PyDict_GetItemWithError(agents, agent_key));
        if (!is_part(page) || !is_part(agent)) {
            goto miss;
        }
        if (memo != NULL) {
            memo_store(memo, memo_key, memo_key_hash, page, agent);
        }
        hashed_agent = (chunk){PyBytes_AS_STRING(PyTuple_GET_ITEM(agent, 0)),
                               PyBytes_GET_SIZE(PyTuple_GET_ITEM(agent, 0))};
        page_head = (chunk){PyBytes_AS_STRING(PyTuple_GET_ITEM(page, 0)),
                            PyBytes_GET_SIZE(PyTuple_GET_ITEM(page, 0))};
        page_tail = (chunk){PyBytes_AS_STRING(PyTuple_GET_ITEM(page, 1)),
                            PyBytes_GET_SIZE(PyTuple_GET_ITEM(page, 1))};
        agent_columns = (chunk){PyBytes_AS_STRING(PyTuple_GET_ITEM(agent, 1)),
                                PyBytes_GET_SIZE(PyTuple_GET_ITEM(agent, 1))};
    }

    if (cached_salt == NULL ||
        (cached_salt != salt &&
         (PyBytes_GET_SIZE(cached_salt) != PyBytes_GET_SIZE(salt) ||
          memcmp(PyBytes_AS_STRING(cached_salt), PyBytes_AS_STRING(salt),
                 (size_t)PyBytes_GET_SIZE(salt)) != 0))) {
        b2b_init(&cached_state, DIGEST_SIZE, (const uint8_t *)PyBytes_AS_STRING(salt),
                 (size_t)PyBytes_GET_SIZE(salt));
        /* The message is never empty (the site's name ends with a NUL), so the key
         * block is never the last one: compress it once per salt, not per request. */
        if (cached_state.buflen == B2B_BLOCK) {
            b2b_count(&cached_state, B2B_BLOCK);
            b2b_compress(&cached_state, 0);
            cached_state.buflen = 0;
        }
        Py_XSETREF(cached_salt, Py_NewRef(salt));
    }
    state = cached_state;
    b2b_update(&state, (const uint8_t *)PyBytes_AS_STRING(site), (size_t)PyBytes_GET_SIZE(site));
    b2b_update(&state, (const uint8_t *)ip, (size_t)ip_length);
    b2b_update(&state, (const uint8_t *)"", 1);
    b2b_update(&state, (const uint8_t *)hashed_agent.data, (size_t)hashed_agent.size);
    b2b_final(&state, digest, DIGEST_SIZE);
    store64_le(stamp, (uint64_t)(now_ns / 1000000));

    /* The row: ts | page columns | visitor_hash | agent columns | tail columns. */
    chunks[0] = (chunk){(const char *)stamp, 8};
    chunks[1] = page_head;
    chunks[2] = (chunk){(const char *)digest, DIGEST_SIZE};
    chunks[3] = agent_columns;
    chunks[4] = page_tail;
    for (int i = 0; i < 5; i++) {
        size += chunks[i].size;
    }
    status = spool_append(spool, parts, chunks, 5, size);
    if (status < 0) {
        goto cleanup;
    }
    result = Py_NewRef(status > 0 ? Py_True : Py_None);
    goto cleanup;
miss:
    PyErr_Clear();
    result = Py_NewRef(Py_None);
cleanup:
    Py_XDECREF(salt);
    Py_XDECREF(agent);
    Py_XDECREF(page);
    Py_XDECREF(key);
    Py_XDECREF(known);
    Py_XDECREF(day);
    Py_XDECREF(host);
    Py_XDECREF(referer);
    Py_XDECREF(agent_key);
    Py_DECREF(query);
    return result;
}

static PyObject *record_pixel(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 5 && nargs != 6) {
        PyErr_SetString(PyExc_TypeError, "record_pixel() takes 5 or 6 arguments");
        return NULL;
    }
    fixed_parts parts;
    if (parts_read(&parts, args[2], args[4]) < 0) {
        Py_RETURN_NONE;
    }
    long long now_ns = PyLong_AsLongLong(args[1]);
    if (now_ns == -1 && PyErr_Occurred()) {
        PyErr_Clear();
    }
    PyObject *result = record(args[0], now_ns, args[2], args[3], args[4],
                              nargs == 6 ? args[5] : Py_None, &parts, NULL);
    parts_clear(&parts);
    return result;
}

/* ---- Recorder: record_pixel() with its clock, encoder, salts and spool bound --- */

typedef struct {
    PyObject_HEAD
    PyObject *clock, *encoder, *salts, *spool;
    /* Read once when they can be; else on every call, as record_pixel() does. */
    fixed_parts parts;
    int has_parts;
    /* Whether `clock` is time.time_ns, read here without the call. */
    int system_clock;
    vectorcallfunc vectorcall;
    /* Allocated with the recorder (PyMem), when its fixed parts were read. */
    memo_table *memo;
} Recorder;

static PyObject *recorder_vectorcall(PyObject *self, PyObject *const *args, size_t nargsf,
                                     PyObject *kwnames) {
    Recorder *recorder = (Recorder *)self;
    if (PyVectorcall_NARGS(nargsf) != 1 || (kwnames != NULL && PyTuple_GET_SIZE(kwnames))) {
        PyErr_SetString(PyExc_TypeError, "a Recorder takes one argument, the ASGI scope");
        return NULL;
    }
    long long now_ns;
#ifdef CLOCK_REALTIME
    if (recorder->system_clock) {
        struct timespec now;
        if (clock_gettime(CLOCK_REALTIME, &now) != 0) {
            Py_RETURN_NONE;
        }
        now_ns = (long long)now.tv_sec * 1000000000LL + now.tv_nsec;
    } else
#endif
    {
        PyObject *now = PyObject_CallNoArgs(recorder->clock);
        if (now == NULL) {
            return NULL;
        }
        now_ns = PyLong_AsLongLong(now);
        Py_DECREF(now);
        if (now_ns == -1 && PyErr_Occurred()) {
            PyErr_Clear();
        }
    }
    PyObject *result;
    if (recorder->has_parts) {
        result = record(args[0], now_ns, recorder->encoder, recorder->salts, recorder->spool,
                        Py_None, &recorder->parts, recorder->memo);
    } else {
        fixed_parts parts;
        if (parts_read(&parts, recorder->encoder, recorder->spool) < 0) {
            result = Py_NewRef(Py_None);
        } else {
            result = record(args[0], now_ns, recorder->encoder, recorder->salts,
                            recorder->spool, Py_None, &parts, NULL);
            parts_clear(&parts);
        }
    }
    return result;
}

static PyObject *recorder_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    PyObject *clock, *encoder, *salts, *spool;
    static char *keywords[] = {"clock_ns", "encoder", "salts", "spool", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOOO:Recorder", keywords, &clock, &encoder,
                                     &salts, &spool)) {
        return NULL;
    }
    if (!PyCallable_Check(clock)) {
        PyErr_SetString(PyExc_TypeError, "clock_ns must be callable");
        return NULL;
    }
    Recorder *self = (Recorder *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->clock = Py_NewRef(clock);
    self->encoder = Py_NewRef(encoder);
    self->salts = Py_NewRef(salts);
    self->spool = Py_NewRef(spool);
    self->has_parts = parts_read(&self->parts, encoder, spool) == 0;
    if (self->has_parts) {
        self->memo = PyMem_Calloc(1, sizeof(memo_table));
    }
    self->system_clock = clock == system_time_ns;
    self->vectorcall = recorder_vectorcall;
    return (PyObject *)self;
}

static int recorder_traverse(Recorder *self, visitproc visit, void *arg) {
    Py_VISIT(self->clock);
    Py_VISIT(self->encoder);
    Py_VISIT(self->salts);
    Py_VISIT(self->spool);
    return parts_traverse(&self->parts, visit, arg);
}

static int recorder_clear(Recorder *self) {
    Py_CLEAR(self->clock);
    Py_CLEAR(self->encoder);
    Py_CLEAR(self->salts);
    Py_CLEAR(self->spool);
    parts_clear(&self->parts);
    self->has_parts = 0;
    if (self->memo != NULL) {
        memo_free(self->memo);
        PyMem_Free(self->memo);
        self->memo = NULL;
    }
    return 0;
}

static void recorder_dealloc(Recorder *self) {
    PyObject_GC_UnTrack(self);
    recorder_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMemberDef recorder_members[] = {
    {"spool", T_OBJECT, offsetof(Recorder, spool), READONLY, "The spool the rows go to."},
    {"__vectorcalloffset__", T_PYSSIZET, offsetof(Recorder, vectorcall), READONLY},
    {NULL},
};

PyDoc_STRVAR(recorder_doc,
             "Recorder(clock_ns, encoder, salts, spool)\n--\n\n"
             "record_pixel() bound to a beacon's clock, encoder, salts and spool: called with\n"
             "an ASGI scope, it reads ``clock_ns()`` and records the request as record_pixel()\n"
             "does (``True`` once in the spool, ``None`` when the Python path must handle it).\n"
             "What stays the same for the life of the encoder and the spool (the encoder's\n"
             "caches and site, the spool's owner, counters and lock) is read once, here.");

static PyTypeObject RecorderType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "beacon._speedups.Recorder",
    .tp_doc = recorder_doc,
    .tp_basicsize = sizeof(Recorder),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_new = recorder_new,
    .tp_call = PyVectorcall_Call,
    .tp_vectorcall_offset = offsetof(Recorder, vectorcall),
    .tp_traverse = (traverseproc)recorder_traverse,
    .tp_clear = (inquiry)recorder_clear,
    .tp_dealloc = (destructor)recorder_dealloc,
    .tp_members = recorder_members,
};

/* ---- PixelFront: the beacon's ASGI entry, with GET /p.gif answered here ------------- */

/* The pixel's answer being sent: a Sends (asgi_sends.h) of its start and its body. */
static PyObject *pixel_messages(PyObject *headers, PyObject *body, PyObject *send) {
    PyObject *start = PyDict_New(), *rest = PyDict_New(), *list = PySequence_List(headers);
    PyObject *answer = NULL;
    if (start != NULL && rest != NULL && list != NULL &&
        PyDict_SetItem(start, str_type, str_start) == 0 &&
        PyDict_SetItem(start, str_status, status_ok) == 0 &&
        PyDict_SetItem(start, str_headers, list) == 0 &&
        PyDict_SetItem(rest, str_type, str_body_type) == 0 &&
        PyDict_SetItem(rest, str_body, body) == 0) {
        answer = sends_new(send, start, rest);
    }
    Py_XDECREF(start);
    Py_XDECREF(rest);
    Py_XDECREF(list);
    return answer;
}

typedef struct {
    PyObject_HEAD
    PyObject *beacon, *recorder, *stats, *slow, *headers, *body;
    vectorcallfunc vectorcall;
} PixelFront;

/* Whether `text` is the str `expected` (ASCII). */
static int str_is(PyObject *text, const char *expected) {
    return text != NULL && PyUnicode_CheckExact(text) &&
           PyUnicode_CompareWithASCIIString(text, expected) == 0;
}

/* Whether the scope is an HTTP GET of the pixel (under the mount's root path), as the
 * beacon's __call__ tells it; 0 for anything else or anything unexpected. */
static int is_pixel_get(PyObject *scope) {
    if (!PyDict_CheckExact(scope) || !str_is(PyDict_GetItem(scope, str_type), "http") ||
        !str_is(PyDict_GetItem(scope, str_method), "GET")) {
        return 0;
    }
    PyObject *path = PyDict_GetItem(scope, str_path);
    if (path == NULL || !PyUnicode_CheckExact(path)) {
        return 0;
    }
    PyObject *root = PyDict_GetItem(scope, str_root_path);
    Py_ssize_t skip = 0;
    if (root != NULL) {
        if (!PyUnicode_CheckExact(root)) {
            return 0;
        }
        Py_ssize_t length = PyUnicode_GET_LENGTH(root);
        if (length > 0 && PyUnicode_Tailmatch(path, root, 0, length, -1) == 1) {
            skip = length;
        }
    }
    return PyUnicode_GET_LENGTH(path) - skip == 6 &&
           PyUnicode_Tailmatch(path, str_pixel_path, skip, PY_SSIZE_T_MAX, 1) == 1;
}

static PyObject *front_vectorcall(PyObject *object, PyObject *const *args, size_t nargsf,
                                  PyObject *kwnames) {
    PixelFront *self = (PixelFront *)object;
    if (PyVectorcall_NARGS(nargsf) != 3 || kwnames != NULL ||
        !Py_IS_TYPE(self->recorder, &RecorderType) || !is_pixel_get(args[0])) {
        return PyObject_Vectorcall(self->beacon, args, nargsf, kwnames);
    }
    AppStatsObject *stats = (AppStatsObject *)self->stats;
    stats->requests += 1;
    PyObject *recorded = recorder_vectorcall(self->recorder, args, 1, NULL);
    if (recorded == Py_True) {
        stats->recorded += 1;
    } else {
        /* Left to Python, or failed: the beacon's Python path counts and logs it. */
        PyObject *error = Py_None, *type, *value, *traceback;
        if (recorded == NULL) {
            if (!PyErr_ExceptionMatches(PyExc_Exception)) {
                return NULL;
            }
            PyErr_Fetch(&type, &value, &traceback);
            PyErr_NormalizeException(&type, &value, &traceback);
            Py_XDECREF(type);
            Py_XDECREF(traceback);
            error = value != NULL ? value : Py_None;
        }
        PyObject *done = PyObject_CallFunctionObjArgs(self->slow, args[0], error, NULL);
        if (recorded == NULL) {
            Py_XDECREF(value);
        }
        if (done == NULL) {
            Py_XDECREF(recorded);
            return NULL;
        }
        Py_DECREF(done);
    }
    Py_XDECREF(recorded);
    return pixel_messages(self->headers, self->body, args[2]);
}

static PyObject *front_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    PyObject *beacon, *stats, *slow, *headers, *body;
    static char *keywords[] = {"beacon", "stats", "slow", "headers", "body", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO!OO!O!:PixelFront", keywords, &beacon,
                                     &AppStatsType, &stats, &slow, &PyTuple_Type, &headers,
                                     &PyBytes_Type, &body)) {
        return NULL;
    }
    if (!PyCallable_Check(beacon) || !PyCallable_Check(slow)) {
        PyErr_SetString(PyExc_TypeError, "beacon and slow must be callable");
        return NULL;
    }
    PixelFront *self = (PixelFront *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->beacon = Py_NewRef(beacon);
    self->recorder = Py_NewRef(Py_None);
    self->stats = Py_NewRef(stats);
    self->slow = Py_NewRef(slow);
    self->headers = Py_NewRef(headers);
    self->body = Py_NewRef(body);
    self->vectorcall = front_vectorcall;
    return (PyObject *)self;
}

static int front_traverse(PixelFront *self, visitproc visit, void *arg) {
    Py_VISIT(self->beacon);
    Py_VISIT(self->recorder);
    Py_VISIT(self->stats);
    Py_VISIT(self->slow);
    Py_VISIT(self->headers);
    Py_VISIT(self->body);
    return 0;
}

static int front_clear(PixelFront *self) {
    Py_CLEAR(self->beacon);
    Py_CLEAR(self->recorder);
    Py_CLEAR(self->stats);
    Py_CLEAR(self->slow);
    Py_CLEAR(self->headers);
    Py_CLEAR(self->body);
    return 0;
}

static void front_dealloc(PixelFront *self) {
    PyObject_GC_UnTrack(self);
    front_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *front_get_recorder(PixelFront *self, void *Py_UNUSED(closure)) {
    return Py_NewRef(self->recorder != NULL ? self->recorder : Py_None);
}

static int front_set_recorder(PixelFront *self, PyObject *value, void *Py_UNUSED(closure)) {
    if (value == NULL || (value != Py_None && !Py_IS_TYPE(value, &RecorderType))) {
        PyErr_SetString(PyExc_TypeError, "recorder must be a Recorder or None");
        return -1;
    }
    Py_XSETREF(self->recorder, Py_NewRef(value));
    return 0;
}

static PyGetSetDef front_getset[] = {
    {"recorder", (getter)front_get_recorder, (setter)front_set_recorder,
     "The Recorder of GET /p.gif (None: every request goes to the beacon).", NULL},
    {NULL},
};

static PyMemberDef front_members[] = {
    {"beacon", T_OBJECT, offsetof(PixelFront, beacon), READONLY, "The beacon."},
    {"__vectorcalloffset__", T_PYSSIZET, offsetof(PixelFront, vectorcall), READONLY, NULL},
    {NULL},
};

PyDoc_STRVAR(front_doc,
             "PixelFront(beacon, stats, slow, headers, body)\n--\n\n"
             "A beacon's ASGI entry. GET /p.gif (under the scope's root path), once a\n"
             "Recorder is set, is counted in ``stats`` (``requests``, ``recorded``),\n"
             "recorded, and answered with ``headers`` and ``body`` here, without a\n"
             "coroutine; when the Recorder leaves the request to Python or fails,\n"
             "``slow(scope, error)`` records it (``error`` the exception, or None).\n"
             "Every other request is the beacon's: ``beacon(scope, receive, send)``.");

static PyTypeObject PixelFrontType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "beacon._speedups.PixelFront",
    .tp_doc = front_doc,
    .tp_basicsize = sizeof(PixelFront),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_new = front_new,
    .tp_call = PyVectorcall_Call,
    .tp_vectorcall_offset = offsetof(PixelFront, vectorcall),
    .tp_traverse = (traverseproc)front_traverse,
    .tp_clear = (inquiry)front_clear,
    .tp_dealloc = (destructor)front_dealloc,
    .tp_getset = front_getset,
    .tp_members = front_members,
};

/* PixelFront.__call__ as servers look it up by name to tell an ASGI 3 app (a coroutine
 * function), while calls go on through the type's C slot. */
static PyObject *define_call(PyObject *module, PyObject *function) {
    if (!PyCallable_Check(function)) {
        PyErr_SetString(PyExc_TypeError, "define_call() needs a coroutine function");
        return NULL;
    }
    if (PyDict_SetItemString(PixelFrontType.tp_dict, "__call__", function) < 0) {
        return NULL;
    }
    PyType_Modified(&PixelFrontType);
    Py_RETURN_NONE;
}

static PyMethodDef speedups_methods[] = {
    {"record_pixel", (PyCFunction)(void (*)(void))record_pixel, METH_FASTCALL, record_pixel_doc},
    {"define_call", (PyCFunction)define_call, METH_O,
     "define_call(function, /)\n--\n\n"
     "Make ``function`` PixelFront.__call__ when looked up by name (servers tell an ASGI 3\n"
     "app by it being a coroutine function); calling a PixelFront stays its C slot."},
    {NULL, NULL, 0, NULL},
};

PyDoc_STRVAR(module_doc, "Compiled accelerator of the page-view hot path (see beacon.pageviews).");

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "beacon._speedups",
    .m_doc = module_doc,
    .m_size = -1,
    .m_methods = speedups_methods,
};

static int intern_names(void) {
    struct {
        PyObject **target;
        const char *text;
    } names[] = {
        {&str_pages, "_pages"},
        {&str_agents, "_agents"},
        {&str_site_bytes, "_site_bytes"},
        {&str_day_number, "_day_number"},
        {&str_day, "_day"},
        {&str_known, "_known"},
        {&str_lock, "_lock"},
        {&str_open, "_open"},
        {&str_owner, "owner"},
        {&str_stats, "stats"},
        {&str_max_bytes, "max_bytes"},
        {&str_max_line_bytes, "max_line_bytes"},
        {&str_segment_max_bytes, "segment_max_bytes"},
        {&str_size, "size"},
        {&str_offsets, "offsets"},
        {&str_rows, "rows"},
        {&str_mapping, "mapping"},
        {&str_bytes_used, "bytes_used"},
        {&str_accepted, "accepted"},
        {&str_dirty, "_dirty"},
        {&str_acquire, "acquire"},
        {&str_release, "release"},
        {&str_headers, "headers"},
        {&str_query_string, "query_string"},
        {&str_client, "client"},
        {&str_type, "type"},
        {&str_start, "http.response.start"},
        {&str_status, "status"},
        {&str_body_type, "http.response.body"},
        {&str_body, "body"},
        {&str_method, "method"},
        {&str_path, "path"},
        {&str_root_path, "root_path"},
        {&str_pixel_path, "/p.gif"},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        *names[i].target = PyUnicode_InternFromString(names[i].text);
        if (*names[i].target == NULL) {
            return -1;
        }
    }
    empty_bytes = PyBytes_FromStringAndSize(NULL, 0);
    status_ok = PyLong_FromLong(200);
    if (empty_bytes == NULL || status_ok == NULL) {
        return -1;
    }
    PyObject *time_module = PyImport_ImportModule("time");
    if (time_module == NULL) {
        return -1;
    }
    system_time_ns = PyObject_GetAttrString(time_module, "time_ns");
    Py_DECREF(time_module);
    return system_time_ns == NULL ? -1 : 0;
}

PyMODINIT_FUNC PyInit__speedups(void) {
    if (intern_names() < 0) {
        return NULL;
    }
    PyTypeObject *types[] = {&RecorderType,      &SpoolStatsType,     &AppendsLockType,
                             &SegmentFieldsType, &SpoolFieldsType,    &SpoolDirFieldsType,
                             &AppStatsType,      &PixelFrontType,     &SendsType,
                             &EncoderFieldsType};
    const char *type_names[] = {"Recorder",      "SpoolStats",     "AppendsLock",
                                "SegmentFields", "SpoolFields",    "SpoolDirFields",
                                "AppStats",      "PixelFront",     "PixelAnswer",
                                "EncoderFields"};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        if (PyType_Ready(types[i]) < 0) {
            return NULL;
        }
    }
    PyObject *module = PyModule_Create(&speedups_module);
    if (module == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        if (PyModule_AddObjectRef(module, type_names[i], (PyObject *)types[i]) < 0) {
            Py_DECREF(module);
            return NULL;
        }
    }
    return module;
}
