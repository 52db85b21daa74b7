/*
 * Optional compiled dispatch and send wrapper of ConsentMiddleware
 * (mypharm_consent._responder).
 *
 * Every request to a site behind the middleware goes through it, HTML or not.
 * Front, the base of ConsentMiddleware, answers a call in C for everything but
 * the package's own endpoints: the consent state read from the Cookie and
 * Sec-GPC headers and set in the scope, and the app called with the
 * Responder as its send, or with the server's own send for what is never
 * rewritten (HEAD, subresources, excluded paths). It returns the app's own
 * awaitable: the middleware adds no coroutine of its own to a request.
 * At "http.response.start" the Responder tells an uncompressed HTML body
 * (held back, to be rewritten) from anything else (handed on as it is,
 * message by message); a page that then comes whole in one message is
 * rewritten by the engine and sent on as a PageAnswer (asgi_sends.h). The
 * Python definitions in mypharm_consent/asgi.py (ConsentMiddleware.__call__,
 * _PyResponder, _HTMLResponder._held, _page_values, read_request_headers) and
 * ConsentEngine.rewrites_raw_response stay the reference, used alone when this
 * module is missing or when MYPHARM_CONSENT_SPEEDUPS is 0; property tests
 * compare the two. Anything of an unusual type (a scope that is not a dict, a
 * status that is not an int, headers that are not a list or tuple of pairs of
 * bytes, a body that is not bytes, a page in several messages) is left to the
 * definitions.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#define SENDS_TYPE_NAME "mypharm_consent._responder.PageAnswer"
#include "asgi_sends.h"

static PyObject *str_type, *str_status, *str_headers, *str_get, *str_start_type;
static PyObject *str_held, *str_rewrites;
static PyObject *str_dunder_call, *str_upper, *str_first_visit, *str_state_from, *str_state;
static PyObject *str_consent, *str_path, *str_method, *str_is_excluded, *str_raw_path;
static PyObject *str_query_string, *str_send, *str_http, *str_head;
static PyObject *str_body_type, *str_body, *str_more_body, *str_config, *str_html_size_cap;
static PyObject *str_rewrite_page, *str_give_up, *page_keywords;
static PyObject *str_current_cookies, *str_cookie, *str_clock, *str_max_age, *str_timestamp;
static PyObject *str_states;
static PyObject *done, *empty_tuple, *empty_bytes;

/* -- an awaitable that is already complete ------------------------------------------ */

static PyObject *done_await(PyObject *self) { return Py_NewRef(self); }

/* As an iterator it is exhausted at once: `await` gives None without suspending. */
static PyObject *done_next(PyObject *self) {
    (void)self;
    return NULL;
}

static PyAsyncMethods done_async = {done_await, NULL, NULL, NULL};

static PyTypeObject DoneType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "mypharm_consent._responder.Done",
    .tp_basicsize = sizeof(PyObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "An awaitable that is already complete.",
    .tp_as_async = &done_async,
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = done_next,
};

/* -- the response half of ConsentEngine.should_rewrite --------------------------------- */

static int is_space(unsigned char c) {
    /* bytes.strip(): ASCII white space. */
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\x0b' || c == '\x0c';
}

static unsigned char lower(unsigned char c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

/* Whether `size` bytes at `data`, stripped and lower-cased, are `expected` (lower case). */
static int stripped_is(const char *data, Py_ssize_t size, const char *expected) {
    Py_ssize_t start = 0, end = size;
    while (start < end && is_space((unsigned char)data[start])) {
        start++;
    }
    while (end > start && is_space((unsigned char)data[end - 1])) {
        end--;
    }
    Py_ssize_t length = (Py_ssize_t)strlen(expected);
    if (end - start != length) {
        return 0;
    }
    for (Py_ssize_t i = 0; i < length; i++) {
        if (lower((unsigned char)data[start + i]) != (unsigned char)expected[i]) {
            return 0;
        }
    }
    return 1;
}

static int name_is(PyObject *name, const char *expected, Py_ssize_t length) {
    if (PyBytes_GET_SIZE(name) != length) {
        return 0;
    }
    const char *data = PyBytes_AS_STRING(name);
    for (Py_ssize_t i = 0; i < length; i++) {
        if (lower((unsigned char)data[i]) != (unsigned char)expected[i]) {
            return 0;
        }
    }
    return 1;
}

/* ConsentEngine.rewrites_raw_response: 1 or 0; 2 when the Python method must judge. */
static int sniff(PyObject *status, PyObject *headers) {
    if (!PyLong_CheckExact(status)) {
        return 2;
    }
    int overflow = 0;
    long code = PyLong_AsLongAndOverflow(status, &overflow);
    if (overflow) {
        return 2;
    }
    if (code < 200 || code == 204 || code == 205 || code == 304) {
        return 0;
    }
    if (!PyList_CheckExact(headers) && !PyTuple_CheckExact(headers)) {
        return 2;
    }
    PyObject *sequence = headers;
    Py_ssize_t count = PySequence_Fast_GET_SIZE(sequence);
    PyObject *content_type = NULL;
    /* A first pass checks every pair, so that an unusual one is judged in Python
     * whatever comes before it (the loop there stops at a compressed body). */
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *pair = PySequence_Fast_GET_ITEM(sequence, i);
        if (!PyTuple_CheckExact(pair) || PyTuple_GET_SIZE(pair) != 2 ||
            !PyBytes_CheckExact(PyTuple_GET_ITEM(pair, 0)) ||
            !PyBytes_CheckExact(PyTuple_GET_ITEM(pair, 1))) {
            return 2;
        }
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *pair = PySequence_Fast_GET_ITEM(sequence, i);
        PyObject *name = PyTuple_GET_ITEM(pair, 0), *value = PyTuple_GET_ITEM(pair, 1);
        if (name_is(name, "content-type", 12)) {
            content_type = value;
        } else if (name_is(name, "content-encoding", 16)) {
            const char *data = PyBytes_AS_STRING(value);
            Py_ssize_t size = PyBytes_GET_SIZE(value);
            if (!stripped_is(data, size, "") && !stripped_is(data, size, "identity")) {
                return 0;
            }
        }
    }
    if (content_type == NULL) {
        return 0;
    }
    const char *data = PyBytes_AS_STRING(content_type);
    const char *semicolon = memchr(data, ';', (size_t)PyBytes_GET_SIZE(content_type));
    Py_ssize_t size = semicolon ? semicolon - data : PyBytes_GET_SIZE(content_type);
    return stripped_is(data, size, "text/html");
}

PyDoc_STRVAR(rewrites_doc,
             "rewrites(status, headers, /)\n--\n\n"
             "``ConsentEngine.rewrites_raw_response`` for an int status and a list or tuple of\n"
             "pairs of bytes: whether the response is an uncompressed HTML body to rewrite.\n"
             "``None`` for anything else (the Python method judges it).");

static PyObject *rewrites(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    (void)module;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "rewrites() takes a status and headers");
        return NULL;
    }
    int verdict = sniff(args[0], args[1]);
    if (verdict == 2) {
        Py_RETURN_NONE;
    }
    return PyBool_FromLong(verdict);
}

/* -- the request headers the middleware reads ----------------------------------------- */

/* `*joined` (a new reference or NULL) followed by `separator` and `value`. */
static int join_into(PyObject **joined, PyObject *value, const char *separator) {
    if (*joined == NULL) {
        *joined = Py_NewRef(value);
        return 0;
    }
    Py_ssize_t left = PyBytes_GET_SIZE(*joined), gap = (Py_ssize_t)strlen(separator);
    PyObject *result = PyBytes_FromStringAndSize(NULL, left + gap + PyBytes_GET_SIZE(value));
    if (result == NULL) {
        return -1;
    }
    char *out = PyBytes_AS_STRING(result);
    memcpy(out, PyBytes_AS_STRING(*joined), (size_t)left);
    memcpy(out + left, separator, (size_t)gap);
    memcpy(out + left + gap, PyBytes_AS_STRING(value), (size_t)PyBytes_GET_SIZE(value));
    Py_SETREF(*joined, result);
    return 0;
}

PyDoc_STRVAR(request_headers_doc,
             "request_headers(definition, headers, /)\n--\n\n"
             "``read_request_headers`` for a list or tuple of pairs of bytes: the ``Cookie``\n"
             "headers joined with ``; ``, the ``Sec-GPC`` ones with ``, `` and the last\n"
             "``Sec-Fetch-Dest`` (each ``None`` when absent). Anything else is answered by\n"
             "``definition(headers)``.");

/* The three headers read_request_headers gives, as new references (NULL when absent);
 * 1 when `headers` is a list or tuple of pairs of bytes and they were read, 0 when it is
 * not (nothing is set: the definition must read them), -1 on error. */
static int read_headers(PyObject *headers, PyObject **cookie, PyObject **gpc,
                        PyObject **destination) {
    *cookie = *gpc = *destination = NULL;
    if (!PyList_CheckExact(headers) && !PyTuple_CheckExact(headers)) {
        return 0;
    }
    Py_ssize_t count = PySequence_Fast_GET_SIZE(headers);
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *pair = PySequence_Fast_GET_ITEM(headers, i);
        if (!PyTuple_CheckExact(pair) || PyTuple_GET_SIZE(pair) != 2 ||
            !PyBytes_CheckExact(PyTuple_GET_ITEM(pair, 0)) ||
            !PyBytes_CheckExact(PyTuple_GET_ITEM(pair, 1))) {
            Py_CLEAR(*cookie);
            Py_CLEAR(*gpc);
            Py_CLEAR(*destination);
            return 0;
        }
        PyObject *name = PyTuple_GET_ITEM(pair, 0), *value = PyTuple_GET_ITEM(pair, 1);
        Py_ssize_t size = PyBytes_GET_SIZE(name);
        const char *data = PyBytes_AS_STRING(name);
        int status = 0;
        /* Names compared as they are: ASGI servers hand them over lower-cased. */
        if (size == 6 && memcmp(data, "cookie", 6) == 0) {
            status = join_into(cookie, value, "; ");
        } else if (size == 7 && memcmp(data, "sec-gpc", 7) == 0) {
            status = join_into(gpc, value, ", ");
        } else if (size == 14 && memcmp(data, "sec-fetch-dest", 14) == 0) {
            Py_XSETREF(*destination, Py_NewRef(value));
        }
        if (status < 0) {
            Py_CLEAR(*cookie);
            Py_CLEAR(*gpc);
            Py_CLEAR(*destination);
            return -1;
        }
    }
    return 1;
}

static PyObject *request_headers(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    (void)module;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "request_headers() takes a definition and the headers");
        return NULL;
    }
    PyObject *cookie, *gpc, *destination;
    int read = read_headers(args[1], &cookie, &gpc, &destination);
    if (read <= 0) {
        return read < 0 ? NULL : PyObject_CallOneArg(args[0], args[1]);
    }
    PyObject *result = PyTuple_Pack(3, cookie ? cookie : Py_None, gpc ? gpc : Py_None,
                                    destination ? destination : Py_None);
    Py_XDECREF(cookie);
    Py_XDECREF(gpc);
    Py_XDECREF(destination);
    return result;
}

/* -- the send wrapper ------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    PyObject *engine;
    PyObject *parts;
    PyObject *state;
    PyObject *downstream;
    PyObject *start; /* the held "http.response.start", or NULL */
    PyObject *chunks;
    Py_ssize_t size;
    char passing;
    vectorcallfunc vectorcall; /* calling a responder is calling its send */
} Responder;

/* A subclass written in Python is a heap type: its own traverse and dealloc visit and
 * release the type, so these do not (this type is static). */
static int responder_traverse(Responder *self, visitproc visit, void *arg) {
    Py_VISIT(self->engine);
    Py_VISIT(self->parts);
    Py_VISIT(self->state);
    Py_VISIT(self->downstream);
    Py_VISIT(self->start);
    Py_VISIT(self->chunks);
    return 0;
}

static int responder_clear(Responder *self) {
    Py_CLEAR(self->engine);
    Py_CLEAR(self->parts);
    Py_CLEAR(self->state);
    Py_CLEAR(self->downstream);
    Py_CLEAR(self->start);
    Py_CLEAR(self->chunks);
    return 0;
}

static void responder_dealloc(Responder *self) {
    PyObject_GC_UnTrack(self);
    responder_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *responder_vectorcall(PyObject *self, PyObject *const *args, size_t nargsf,
                                      PyObject *kwnames);

static PyObject *responder_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    (void)args;
    (void)kwargs;
    Responder *self = (Responder *)type->tp_alloc(type, 0);
    if (self != NULL) {
        self->vectorcall = responder_vectorcall;
    }
    return (PyObject *)self;
}

static int responder_init(Responder *self, PyObject *args, PyObject *kwargs) {
    PyObject *engine, *parts, *state, *downstream;
    static char *names[] = {"engine", "parts", "state", "send", NULL};
    if (kwargs == NULL && PyTuple_GET_SIZE(args) == 4) {
        /* The middleware's call, once per request: no keyword parsing. */
        engine = PyTuple_GET_ITEM(args, 0);
        parts = PyTuple_GET_ITEM(args, 1);
        state = PyTuple_GET_ITEM(args, 2);
        downstream = PyTuple_GET_ITEM(args, 3);
    } else if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOOO:Responder", names, &engine,
                                            &parts, &state, &downstream)) {
        return -1;
    }
    Py_XSETREF(self->engine, Py_NewRef(engine));
    Py_XSETREF(self->parts, Py_NewRef(parts));
    Py_XSETREF(self->state, Py_NewRef(state));
    Py_XSETREF(self->downstream, Py_NewRef(downstream));
    Py_CLEAR(self->start);
    Py_CLEAR(self->chunks);
    self->size = 0;
    self->passing = 0;
    return 0;
}

/* message[key] for a dict (KeyError when missing, as in Python) or any mapping. */
static PyObject *item(PyObject *message, PyObject *key) {
    if (PyDict_CheckExact(message)) {
        PyObject *value = PyDict_GetItemWithError(message, key);
        if (value == NULL) {
            if (!PyErr_Occurred()) {
                PyErr_SetObject(PyExc_KeyError, key);
            }
            return NULL;
        }
        return Py_NewRef(value);
    }
    return PyObject_GetItem(message, key);
}

/* message.get("headers", ()). */
static PyObject *headers_of(PyObject *message) {
    if (PyDict_CheckExact(message)) {
        PyObject *value = PyDict_GetItemWithError(message, str_headers);
        if (value == NULL) {
            return PyErr_Occurred() ? NULL : PyTuple_New(0);
        }
        return Py_NewRef(value);
    }
    PyObject *empty = PyTuple_New(0);
    if (empty == NULL) {
        return NULL;
    }
    PyObject *value = PyObject_CallMethodObjArgs(message, str_get, str_headers, empty, NULL);
    Py_DECREF(empty);
    return value;
}

/* Whether the start message `message` begins an HTML response to hold: 1, 0 or -1. */
static int holds(Responder *self, PyObject *message) {
    PyObject *kind = item(message, str_type);
    if (kind == NULL) {
        return -1;
    }
    int is_start = PyObject_RichCompareBool(kind, str_start_type, Py_EQ);
    Py_DECREF(kind);
    if (is_start <= 0) {
        return is_start;
    }
    PyObject *status = item(message, str_status);
    if (status == NULL) {
        return -1;
    }
    PyObject *headers = headers_of(message);
    if (headers == NULL) {
        Py_DECREF(status);
        return -1;
    }
    int verdict = sniff(status, headers);
    if (verdict == 2) {
        PyObject *answer =
            PyObject_CallMethodObjArgs(self->engine, str_rewrites, status, headers, NULL);
        verdict = answer == NULL ? -1 : PyObject_IsTrue(answer);
        Py_XDECREF(answer);
    }
    Py_DECREF(status);
    Py_DECREF(headers);
    return verdict;
}

PyDoc_STRVAR(send_doc,
             "send(message, /)\n--\n\n"
             "The app's ``send``: what to await. A response that is not HTML is handed on\n"
             "message by message; an HTML one is held back (``_held`` takes its body).");

static PyObject *held_page(Responder *self, PyObject *message);

static PyObject *responder_send(Responder *self, PyObject *message) {
    if (self->passing) {
        return PyObject_CallOneArg(self->downstream, message);
    }
    if (self->start == NULL) {
        int held = holds(self, message);
        if (held < 0) {
            return NULL;
        }
        if (held) {
            PyObject *chunks = PyList_New(0);
            if (chunks == NULL) {
                return NULL;
            }
            Py_XSETREF(self->start, Py_NewRef(message));
            Py_XSETREF(self->chunks, chunks);
            self->size = 0;
            return Py_NewRef(done);
        }
        self->passing = 1;
        return PyObject_CallOneArg(self->downstream, message);
    }
    PyObject *answer = held_page(self, message);
    if (answer != NULL || PyErr_Occurred()) {
        return answer;
    }
    return PyObject_CallMethodOneArg((PyObject *)self, str_held, message);
}

/* responder(message) is responder.send(message): the middleware hands the responder itself
 * to the app as its send, without a bound method per request. */
static PyObject *responder_vectorcall(PyObject *self, PyObject *const *args, size_t nargsf,
                                      PyObject *kwnames) {
    if (PyVectorcall_NARGS(nargsf) != 1 || (kwnames != NULL && PyTuple_GET_SIZE(kwnames))) {
        PyErr_SetString(PyExc_TypeError, "send() takes exactly one message");
        return NULL;
    }
    return responder_send((Responder *)self, args[0]);
}

static PyObject *responder_get_start(Responder *self, void *closure) {
    (void)closure;
    return Py_NewRef(self->start ? self->start : Py_None);
}

static int responder_set_start(Responder *self, PyObject *value, void *closure) {
    (void)closure;
    if (value == NULL) {
        PyErr_SetString(PyExc_AttributeError, "start cannot be deleted");
        return -1;
    }
    Py_XSETREF(self->start, value == Py_None ? NULL : Py_NewRef(value));
    return 0;
}

static PyObject *responder_get_chunks(Responder *self, void *closure) {
    (void)closure;
    if (self->chunks == NULL) {
        PyErr_SetString(PyExc_AttributeError, "chunks");
        return NULL;
    }
    return Py_NewRef(self->chunks);
}

static int responder_set_chunks(Responder *self, PyObject *value, void *closure) {
    (void)closure;
    if (value == NULL || !PyList_Check(value)) {
        PyErr_SetString(PyExc_TypeError, "chunks is a list");
        return -1;
    }
    Py_XSETREF(self->chunks, Py_NewRef(value));
    return 0;
}

static PyObject *responder_get_passing(Responder *self, void *closure) {
    (void)closure;
    return PyBool_FromLong(self->passing);
}

static int responder_set_passing(Responder *self, PyObject *value, void *closure) {
    (void)closure;
    if (value == NULL) {
        PyErr_SetString(PyExc_AttributeError, "passing cannot be deleted");
        return -1;
    }
    int truth = PyObject_IsTrue(value);
    if (truth < 0) {
        return -1;
    }
    self->passing = (char)truth;
    return 0;
}

static PyGetSetDef responder_getset[] = {
    {"start", (getter)responder_get_start, (setter)responder_set_start,
     "The held ``http.response.start`` message, or ``None``.", NULL},
    {"chunks", (getter)responder_get_chunks, (setter)responder_set_chunks,
     "The body chunks held so far (set once a response is held).", NULL},
    {"passing", (getter)responder_get_passing, (setter)responder_set_passing,
     "Whether messages are handed on as they are.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMemberDef responder_members[] = {
    {"engine", T_OBJECT, offsetof(Responder, engine), READONLY, "The consent engine."},
    {"parts", T_OBJECT, offsetof(Responder, parts), READONLY, "How the request was sent."},
    {"state", T_OBJECT, offsetof(Responder, state), READONLY, "The visitor's consent."},
    {"downstream", T_OBJECT, offsetof(Responder, downstream), READONLY, "The server's send."},
    {"size", T_PYSSIZET, offsetof(Responder, size), 0, "Bytes of body held so far."},
    {NULL, 0, 0, 0, NULL},
};

static PyMethodDef responder_methods[] = {
    {"send", (PyCFunction)responder_send, METH_O, send_doc},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ResponderType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "mypharm_consent._responder.Responder",
    .tp_basicsize = sizeof(Responder),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC |
                Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = "Responder(engine, parts, state, send): one response on its way out.\n\n"
              "A subclass provides ``_held(message)``, awaited for every message after\n"
              "the start of a response held back. Calling a responder is calling its\n"
              "``send``.",
    .tp_new = responder_new,
    .tp_call = PyVectorcall_Call,
    .tp_vectorcall_offset = offsetof(Responder, vectorcall),
    .tp_init = (initproc)responder_init,
    .tp_dealloc = (destructor)responder_dealloc,
    .tp_traverse = (traverseproc)responder_traverse,
    .tp_clear = (inquiry)responder_clear,
    .tp_methods = responder_methods,
    .tp_members = responder_members,
    .tp_getset = responder_getset,
};

/* -- a whole page held back, rewritten ---------------------------------------------------- */

/* What every ConsentMiddleware shares, given once by `configure`: the type that wraps the
 * send of a response that may be HTML, and the Sec-Fetch-Dest values passed through. */
static PyObject *responder_type, *subresources;
/* Whether responder_type is built as Responder itself would be (its __new__, __init__,
 * __call__ and send are Responder's): then a responder is made here without the calls, and
 * handed to the app as its own send. */
static int responder_plain;
/* Cookie headers up to this long have their genuine values remembered by the engine
 * (engine._MAX_REMEMBERED_COOKIE_CHARS). */
static Py_ssize_t remembered_chars;

/* Whether `text` is exactly the str `expected` (interned; ASCII): servers hand over the
 * same interned constants, which are told by identity. */
static int str_is(PyObject *text, PyObject *expected) {
    if (text == expected) {
        return 1;
    }
    return PyUnicode_CheckExact(text) && PyUnicode_GET_LENGTH(text) == PyUnicode_GET_LENGTH(expected) &&
           PyUnicode_Compare(text, expected) == 0;
}

/* `value` (bytes) as latin-1 text, or None. */
static PyObject *latin1(PyObject *value) {
    if (value == NULL) {
        return Py_NewRef(Py_None);
    }
    return PyUnicode_DecodeLatin1(PyBytes_AS_STRING(value), PyBytes_GET_SIZE(value), NULL);
}


/* asgi._page_values over `parts` (method, path, raw path, query string, headers): the target
 * and the Accept-Language, Cookie and Host headers (repeated ones joined as there), each a
 * new reference (None when absent). 1 when read, 0 when `parts` is of an unusual shape
 * (the definition reads it), -1 on error. */
static int page_values(PyObject *parts, PyObject **values) {
    values[0] = values[1] = values[2] = values[3] = NULL;
    if (!PyTuple_CheckExact(parts) || PyTuple_GET_SIZE(parts) != 5) {
        return 0;
    }
    PyObject *path = PyTuple_GET_ITEM(parts, 1), *raw_path = PyTuple_GET_ITEM(parts, 2);
    PyObject *query = PyTuple_GET_ITEM(parts, 3), *headers = PyTuple_GET_ITEM(parts, 4);
    if (!PyUnicode_CheckExact(path) || (raw_path != Py_None && !PyBytes_CheckExact(raw_path)) ||
        !PyBytes_CheckExact(query) || (!PyList_CheckExact(headers) && !PyTuple_CheckExact(headers))) {
        return 0;
    }
    PyObject *joined[3] = {NULL, NULL, NULL}; /* Accept-Language, Cookie, Host as bytes */
    Py_ssize_t count = PySequence_Fast_GET_SIZE(headers);
    int status = 1;
    for (Py_ssize_t i = 0; i < count && status == 1; i++) {
        PyObject *pair = PySequence_Fast_GET_ITEM(headers, i);
        if (!PyTuple_CheckExact(pair) || PyTuple_GET_SIZE(pair) != 2 ||
            !PyBytes_CheckExact(PyTuple_GET_ITEM(pair, 0)) ||
            !PyBytes_CheckExact(PyTuple_GET_ITEM(pair, 1))) {
            status = 0;
            break;
        }
        PyObject *name = PyTuple_GET_ITEM(pair, 0), *value = PyTuple_GET_ITEM(pair, 1);
        Py_ssize_t size = PyBytes_GET_SIZE(name);
        const char *data = PyBytes_AS_STRING(name);
        /* Compared as they are, as the definition does: ASGI names are lower-cased. */
        if (size == 15 && memcmp(data, "accept-language", 15) == 0) {
            status = join_into(&joined[0], value, ", ") < 0 ? -1 : 1;
        } else if (size == 6 && memcmp(data, "cookie", 6) == 0) {
            status = join_into(&joined[1], value, "; ") < 0 ? -1 : 1;
        } else if (size == 4 && memcmp(data, "host", 4) == 0) {
            status = join_into(&joined[2], value, ", ") < 0 ? -1 : 1;
        }
    }
    PyObject *target = NULL;
    if (status == 1) {
        /* raw_path when not empty, else path; then "?" and the query string when not empty.
         * Latin-1 maps byte to character, so decoding the joined bytes once is the same. */
        if (raw_path != Py_None && PyBytes_GET_SIZE(raw_path) > 0) {
            PyObject *whole = Py_NewRef(raw_path);
            if (PyBytes_GET_SIZE(query) > 0 &&
                (join_into(&whole, query, "?") < 0)) {
                Py_CLEAR(whole);
            }
            target = whole == NULL ? NULL : latin1(whole);
            Py_XDECREF(whole);
        } else if (PyBytes_GET_SIZE(query) > 0) {
            PyObject *tail = PyBytes_FromStringAndSize("?", 1);
            if (tail != NULL && join_into(&tail, query, "") == 0) {
                PyObject *decoded = latin1(tail);
                target = decoded == NULL ? NULL : PyUnicode_Concat(path, decoded);
                Py_XDECREF(decoded);
            }
            Py_XDECREF(tail);
        } else {
            target = Py_NewRef(path);
        }
        status = target == NULL ? -1 : 1;
    }
    if (status == 1) {
        values[0] = target;
        for (int i = 0; i < 3 && status == 1; i++) {
            values[i + 1] = latin1(joined[i]);
            if (values[i + 1] == NULL) {
                status = -1;
            }
        }
    }
    for (int i = 0; i < 3; i++) {
        Py_XDECREF(joined[i]);
    }
    if (status != 1) {
        for (int i = 0; i < 4; i++) {
            Py_CLEAR(values[i]);
        }
    }
    return status;
}

/* engine.config.html_size_cap as a size, or -1 (with an exception set, or none when it is
 * not an int: the definition judges). */
static Py_ssize_t size_cap(PyObject *engine) {
    PyObject *config = PyObject_GetAttr(engine, str_config);
    if (config == NULL) {
        return -1;
    }
    PyObject *cap = PyObject_GetAttr(config, str_html_size_cap);
    Py_DECREF(config);
    if (cap == NULL) {
        return -1;
    }
    Py_ssize_t value = PyLong_CheckExact(cap) ? PyLong_AsSsize_t(cap) : -1;
    Py_DECREF(cap);
    if (value < 0 && PyErr_Occurred() && PyErr_ExceptionMatches(PyExc_OverflowError)) {
        PyErr_Clear();
    }
    return value;
}

/* A message of the form {"type": "http.response.body", "body": b"..."}, with "more_body"
 * absent or False: its body (borrowed), else NULL (error set or not). */
static PyObject *whole_body(PyObject *message) {
    if (!PyDict_CheckExact(message)) {
        return NULL;
    }
    PyObject *kind = PyDict_GetItemWithError(message, str_type);
    if (kind == NULL || !str_is(kind, str_body_type)) {
        return NULL;
    }
    PyObject *more = PyDict_GetItemWithError(message, str_more_body);
    if ((more != NULL && more != Py_False) || PyErr_Occurred()) {
        return NULL;
    }
    PyObject *body = PyDict_GetItemWithError(message, str_body);
    return body != NULL && PyBytes_CheckExact(body) ? body : NULL;
}

/* _HTMLResponder._held for the usual case, a page sent whole in one message after its held
 * start and within html_size_cap: the page rewritten by engine.rewrite_page and handed on as
 * a PageAnswer (the start with the new headers, then the new body), or the original given up
 * through _give_up when the engine leaves it. NULL without an exception for anything else:
 * the definition answers it (nothing is changed before that is known). */
static PyObject *held_page(Responder *self, PyObject *message) {
    if (!responder_plain || Py_TYPE(self) != (PyTypeObject *)responder_type ||
        !PyDict_CheckExact(self->start) || self->chunks == NULL ||
        !PyList_CheckExact(self->chunks) || PyList_GET_SIZE(self->chunks) != 0) {
        return NULL;
    }
    PyObject *body = whole_body(message);
    if (body == NULL) {
        return NULL;
    }
    Py_INCREF(body);
    PyObject *values[4], *answer = NULL;
    Py_ssize_t cap = size_cap(self->engine);
    if (cap < 0 || self->size + PyBytes_GET_SIZE(body) > cap ||
        page_values(self->parts, values) != 1) {
        Py_DECREF(body);
        return NULL;
    }
    PyObject *headers = PyDict_GetItemWithError(self->start, str_headers);
    headers = headers != NULL ? Py_NewRef(headers) : PyErr_Occurred() ? NULL : Py_NewRef(empty_tuple);
    PyObject *chunks = PyList_New(0);
    if (headers == NULL || chunks == NULL) {
        Py_XDECREF(chunks);
        goto done;
    }
    self->size += PyBytes_GET_SIZE(body);
    Py_SETREF(self->chunks, chunks);
    PyObject *args[8] = {self->engine, self->state, headers, body,
                         values[0],    values[1],   values[2], values[3]};
    PyObject *rewritten = PyObject_VectorcallMethod(str_rewrite_page, args, 4, page_keywords);
    if (rewritten == NULL) {
        goto done;
    }
    if (rewritten == Py_None) {
        Py_DECREF(rewritten);
        PyObject *original = PyDict_New();
        if (original != NULL && PyDict_SetItem(original, str_type, str_body_type) == 0 &&
            PyDict_SetItem(original, str_body, body) == 0 &&
            PyDict_SetItem(original, str_more_body, Py_False) == 0) {
            answer = PyObject_CallMethodOneArg((PyObject *)self, str_give_up, original);
        }
        Py_XDECREF(original);
        goto done;
    }
    PyObject *pair = PySequence_Tuple(rewritten);
    Py_DECREF(rewritten);
    if (pair == NULL) {
        goto done;
    }
    if (PyTuple_GET_SIZE(pair) != 2) {
        PyErr_Format(PyExc_ValueError, "expected 2 values to unpack, got %zd",
                     PyTuple_GET_SIZE(pair));
        Py_DECREF(pair);
        goto done;
    }
    PyObject *start = PyDict_Copy(self->start), *rest = PyDict_New();
    if (start != NULL && rest != NULL &&
        PyDict_SetItem(start, str_headers, PyTuple_GET_ITEM(pair, 0)) == 0 &&
        PyDict_SetItem(rest, str_type, str_body_type) == 0 &&
        PyDict_SetItem(rest, str_body, PyTuple_GET_ITEM(pair, 1)) == 0 &&
        PyDict_SetItem(rest, str_more_body, Py_False) == 0) {
        answer = sends_new(self->downstream, start, rest);
    }
    Py_XDECREF(start);
    Py_XDECREF(rest);
    Py_DECREF(pair);
done:
    Py_XDECREF(headers);
    Py_DECREF(body);
    for (int i = 0; i < 4; i++) {
        Py_DECREF(values[i]);
    }
    return answer;
}

/* -- the middleware's dispatch ------------------------------------------------------------ */


typedef struct {
    PyObject_HEAD
    PyObject *app;
    PyObject *engine;
    PyObject *prefix;
    PyObject *owned_prefix;
    char excludes;
    vectorcallfunc vectorcall; /* front_vectorcall, used once fasten_call set the flag */
} Front;

static int front_traverse(Front *self, visitproc visit, void *arg) {
    Py_VISIT(self->app);
    Py_VISIT(self->engine);
    Py_VISIT(self->prefix);
    Py_VISIT(self->owned_prefix);
    return 0;
}

static int front_clear(Front *self) {
    Py_CLEAR(self->app);
    Py_CLEAR(self->engine);
    Py_CLEAR(self->prefix);
    Py_CLEAR(self->owned_prefix);
    return 0;
}

static void front_dealloc(Front *self) {
    PyObject_GC_UnTrack(self);
    front_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* The class's own __call__ (the Python definition), bound and called: what answers
 * whatever the compiled dispatch leaves, exactly as without this module. */
static PyObject *definition(PyObject *self, PyObject *args, PyObject *kwargs) {
    PyObject *descriptor = _PyType_Lookup(Py_TYPE(self), str_dunder_call);
    if (descriptor == NULL || PyObject_TypeCheck(descriptor, &PyWrapperDescr_Type)) {
        PyErr_Format(PyExc_TypeError, "%.200s defines no __call__ of its own",
                     Py_TYPE(self)->tp_name);
        return NULL;
    }
    Py_INCREF(descriptor);
    descrgetfunc get = Py_TYPE(descriptor)->tp_descr_get;
    PyObject *bound =
        get == NULL ? Py_NewRef(descriptor) : get(descriptor, self, (PyObject *)Py_TYPE(self));
    Py_DECREF(descriptor);
    if (bound == NULL) {
        return NULL;
    }
    PyObject *result = PyObject_Call(bound, args, kwargs);
    Py_DECREF(bound);
    return result;
}


/* `method` upper-cased (a new reference): itself when it has no lower-case letter. */
static PyObject *upper(PyObject *method) {
    if (PyUnicode_IS_ASCII(method)) {
        const Py_UCS1 *data = PyUnicode_1BYTE_DATA(method);
        Py_ssize_t size = PyUnicode_GET_LENGTH(method), i = 0;
        while (i < size && !(data[i] >= 'a' && data[i] <= 'z')) {
            i++;
        }
        if (i == size) {
            return Py_NewRef(method);
        }
    }
    return PyObject_CallMethodNoArgs(method, str_upper);
}


/* `name` of `object` as a C integer, or -1 with *failed set (an exception, or none when
 * it is not an int in range: the definition judges). */
static long long integer_of(PyObject *object, PyObject *name, int *failed) {
    PyObject *value = PyObject_GetAttr(object, name);
    long long result = -1;
    if (value != NULL && PyLong_CheckExact(value)) {
        int overflow = 0;
        result = PyLong_AsLongLongAndOverflow(value, &overflow);
        if (overflow) {
            result = -1;
            *failed = 1;
        }
    } else {
        *failed = 1;
    }
    Py_XDECREF(value);
    if (result == -1 && PyErr_Occurred()) {
        *failed = 1;
    }
    return result;
}

/* A returning visitor's state, as ConsentEngine.state_from gives it for a Cookie header
 * without Sec-GPC, without its Python frames: the genuine values the engine remembers for
 * the header (engine._current_cookies) and the first of them within its age
 * (ConsentCookie.state_among), or the first visit's state when none is. NULL without an
 * exception when the header is too long to be remembered or anything is of an unusual
 * type: engine.state_from answers. */
static PyObject *remembered_state(PyObject *engine, PyObject *cookie) {
    Py_ssize_t size = PyBytes_GET_SIZE(cookie);
    if (size == 0) {
        return PyObject_GetAttr(engine, str_first_visit);
    }
    if (size > remembered_chars) {
        return NULL;
    }
    PyObject *text = latin1(cookie);
    if (text == NULL) {
        return NULL;
    }
    PyObject *current = PyObject_CallMethodOneArg(engine, str_current_cookies, text);
    Py_DECREF(text);
    if (current == NULL) {
        return NULL;
    }
    PyObject *verifier = PyTuple_CheckExact(current) ? PyObject_GetAttr(engine, str_cookie) : NULL;
    PyObject *clock = verifier != NULL ? PyObject_GetAttr(verifier, str_clock) : NULL;
    PyObject *state = NULL;
    int failed = clock == NULL;
    long long max_age = failed ? -1 : integer_of(verifier, str_max_age, &failed);
    PyObject *moment = failed ? NULL : PyObject_CallNoArgs(clock);
    PyObject *now_value = moment != NULL ? PyNumber_Long(moment) : NULL;
    long long now = -1;
    if (now_value != NULL && PyLong_CheckExact(now_value)) {
        int overflow = 0;
        now = PyLong_AsLongLongAndOverflow(now_value, &overflow);
        failed = overflow || (now == -1 && PyErr_Occurred());
    } else {
        failed = 1;
    }
    for (Py_ssize_t i = 0; !failed && state == NULL && i < PyTuple_GET_SIZE(current); i++) {
        PyObject *verified = PyTuple_GET_ITEM(current, i);
        long long timestamp = integer_of(verified, str_timestamp, &failed);
        if (failed || now - timestamp < 0 || now - timestamp > max_age) {
            continue;
        }
        PyObject *states = PyObject_GetAttr(verified, str_states);
        if (states != NULL && PyTuple_CheckExact(states) && PyTuple_GET_SIZE(states) == 2) {
            state = Py_NewRef(PyTuple_GET_ITEM(states, 0));
        } else {
            failed = 1;
        }
        Py_XDECREF(states);
    }
    if (!failed && state == NULL) {
        state = PyObject_GetAttr(engine, str_first_visit);
    }
    Py_DECREF(current);
    Py_XDECREF(verifier);
    Py_XDECREF(clock);
    Py_XDECREF(moment);
    Py_XDECREF(now_value);
    if (failed) {
        Py_CLEAR(state);
    }
    return state;
}

/* The consent state of the request (a new reference): the engine's first visit when neither
 * header is there, a returning visitor's from what the engine remembers (remembered_state),
 * else engine.state_from(cookie, gpc). */
static PyObject *state_of(PyObject *engine, PyObject *cookie, PyObject *gpc) {
    if (cookie == NULL && gpc == NULL) {
        return PyObject_GetAttr(engine, str_first_visit);
    }
    if (gpc == NULL) {
        PyObject *state = remembered_state(engine, cookie);
        if (state != NULL) {
            return state;
        }
        if (PyErr_Occurred()) {
            if (!PyErr_ExceptionMatches(PyExc_Exception)) {
                return NULL;
            }
            PyErr_Clear(); /* raised again, if it must be, by engine.state_from below */
        }
    }
    PyObject *cookie_text = latin1(cookie), *gpc_text = NULL, *state = NULL;
    if (cookie_text != NULL && (gpc_text = latin1(gpc)) != NULL) {
        state = PyObject_CallMethodObjArgs(engine, str_state_from, cookie_text, gpc_text, NULL);
    }
    Py_XDECREF(cookie_text);
    Py_XDECREF(gpc_text);
    return state;
}

/* scope.setdefault("state", {})["consent"] = state. */
static int publish(PyObject *scope, PyObject *state) {
    PyObject *holder = PyDict_GetItemWithError(scope, str_state);
    if (holder == NULL) {
        if (PyErr_Occurred()) {
            return -1;
        }
        PyObject *fresh = PyDict_New();
        if (fresh == NULL || PyDict_SetItem(scope, str_state, fresh) < 0) {
            Py_XDECREF(fresh);
            return -1;
        }
        int status = PyDict_SetItem(fresh, str_consent, state);
        Py_DECREF(fresh);
        return status;
    }
    if (PyDict_CheckExact(holder)) {
        return PyDict_SetItem(holder, str_consent, state);
    }
    Py_INCREF(holder);
    int status = PyObject_SetItem(holder, str_consent, state);
    Py_DECREF(holder);
    return status;
}

/* scope.get(key, otherwise), borrowed; NULL only on error. */
static PyObject *get_or(PyObject *scope, PyObject *key, PyObject *otherwise) {
    PyObject *value = PyDict_GetItemWithError(scope, key);
    if (value == NULL && !PyErr_Occurred()) {
        return otherwise;
    }
    return value;
}

/* responder_type(engine, parts, state, send), a new reference. */
static PyObject *make_responder(PyObject *engine, PyObject *parts, PyObject *state,
                                PyObject *send) {
    if (!responder_plain) {
        PyObject *made[4] = {engine, parts, state, send};
        return PyObject_Vectorcall(responder_type, made, 4, NULL);
    }
    PyTypeObject *type = (PyTypeObject *)responder_type;
    Responder *made = (Responder *)type->tp_alloc(type, 0);
    if (made == NULL) {
        return NULL;
    }
    made->vectorcall = responder_vectorcall;
    made->engine = Py_NewRef(engine);
    made->parts = Py_NewRef(parts);
    made->state = Py_NewRef(state);
    made->downstream = Py_NewRef(send);
    return (PyObject *)made;
}

enum { ANSWERED, LEFT, FAILED, RAISED };

/* The compiled ConsentMiddleware.__call__ for a dict scope: sets *result to what the
 * definition would await (the app's own awaitable) and gives ANSWERED, or gives LEFT for
 * the definition to answer (an endpoint of the package, anything of an unusual type).
 * FAILED: an exception was raised before the app was called; RAISED: by calling the app. */
static int dispatch(Front *self, PyObject *scope, PyObject *receive, PyObject *send,
                    PyObject **result) {
    PyObject *forward[3] = {scope, receive, send};
    PyObject *kind = PyDict_GetItemWithError(scope, str_type);
    if (kind == NULL || !PyUnicode_CheckExact(kind)) {
        return PyErr_Occurred() ? FAILED : LEFT;
    }
    if (!str_is(kind, str_http)) {
        *result = PyObject_Vectorcall(self->app, forward, 3, NULL);
        return *result == NULL ? RAISED : ANSWERED;
    }
    PyObject *path = PyDict_GetItemWithError(scope, str_path);
    PyObject *method = PyDict_GetItemWithError(scope, str_method);
    if (path == NULL || method == NULL || !PyUnicode_CheckExact(path) ||
        !PyUnicode_CheckExact(method)) {
        return PyErr_Occurred() ? FAILED : LEFT;
    }
    if (PyUnicode_Compare(path, self->prefix) == 0 ||
        PyUnicode_Tailmatch(path, self->owned_prefix, 0, PY_SSIZE_T_MAX, -1) == 1) {
        return LEFT; /* the package's own endpoints: the definition answers them */
    }
    if (PyErr_Occurred()) {
        return FAILED;
    }
    PyObject *headers = get_or(scope, str_headers, empty_tuple);
    if (headers == NULL) {
        return FAILED;
    }
    PyObject *cookie, *gpc, *destination;
    int read = read_headers(headers, &cookie, &gpc, &destination);
    if (read <= 0) {
        return read < 0 ? FAILED : LEFT;
    }
    Py_INCREF(headers);
    Py_INCREF(path);
    PyObject *state = state_of(self->engine, cookie, gpc), *upper_method = NULL;
    Py_XDECREF(cookie);
    Py_XDECREF(gpc);
    int status = FAILED;
    if (state == NULL || publish(scope, state) < 0 || (upper_method = upper(method)) == NULL) {
        goto done;
    }
    int passes = destination != NULL ? PySet_Contains(subresources, destination) : 0;
    if (passes == 0) {
        passes = str_is(upper_method, str_head);
    }
    if (passes == 0 && self->excludes) {
        PyObject *excluded = PyObject_CallMethodOneArg(self->engine, str_is_excluded, path);
        passes = excluded == NULL ? -1 : PyObject_IsTrue(excluded);
        Py_XDECREF(excluded);
    }
    if (passes < 0) {
        goto done;
    }
    if (passes) {
        *result = PyObject_Vectorcall(self->app, forward, 3, NULL);
        status = *result == NULL ? RAISED : ANSWERED;
        goto done;
    }
    /* What the request is made of, as the client sent it: routing may change the scope
     * before the response starts. */
    PyObject *raw_path = get_or(scope, str_raw_path, Py_None);
    PyObject *query = raw_path == NULL ? NULL : get_or(scope, str_query_string, empty_bytes);
    if (query == NULL) {
        goto done;
    }
    PyObject *parts = PyTuple_Pack(5, upper_method, path, raw_path, query, headers);
    if (parts == NULL) {
        goto done;
    }
    PyObject *responder = make_responder(self->engine, parts, state, send);
    Py_DECREF(parts);
    if (responder == NULL) {
        goto done;
    }
    /* A plain responder is its own send (see responder_vectorcall); otherwise the send of
     * the subclass is looked up, as the definition does. */
    PyObject *wrapped = responder_plain ? responder : PyObject_GetAttr(responder, str_send);
    if (!responder_plain) {
        Py_DECREF(responder);
    }
    if (wrapped == NULL) {
        goto done;
    }
    PyObject *onward[3] = {scope, receive, wrapped};
    *result = PyObject_Vectorcall(self->app, onward, 3, NULL);
    Py_DECREF(wrapped);
    status = *result == NULL ? RAISED : ANSWERED;
done:
    Py_XDECREF(destination);
    Py_XDECREF(state);
    Py_XDECREF(upper_method);
    Py_DECREF(path);
    Py_DECREF(headers);
    return status;
}

/* Whether the compiled dispatch can run for this call's scope at all. */
static int dispatchable(Front *self, PyObject *scope) {
    return PyDict_CheckExact(scope) && self->app != NULL && self->engine != NULL &&
           self->prefix != NULL && self->owned_prefix != NULL &&
           PyUnicode_CheckExact(self->prefix) && PyUnicode_CheckExact(self->owned_prefix) &&
           responder_type != NULL;
}

/* What a call of the middleware returns once `dispatch` has run; `args` and `kwargs` are
 * the call's, for the definition when it must answer. */
static PyObject *dispatched(PyObject *op, int status, PyObject *result, PyObject *args,
                            PyObject *kwargs) {
    if (status == ANSWERED) {
        return result;
    }
    if (status == RAISED) {
        return NULL;
    }
    if (status == FAILED) {
        /* Whatever failed before the app was called fails again in the definition, where it
         * is raised by the awaited coroutine as without this module. */
        if (!PyErr_ExceptionMatches(PyExc_Exception)) {
            return NULL;
        }
        PyErr_Clear();
    }
    return definition(op, args, kwargs);
}

static PyObject *front_call(PyObject *op, PyObject *args, PyObject *kwargs) {
    Front *self = (Front *)op;
    if ((kwargs != NULL && PyDict_GET_SIZE(kwargs) != 0) || PyTuple_GET_SIZE(args) != 3 ||
        !dispatchable(self, PyTuple_GET_ITEM(args, 0))) {
        return definition(op, args, kwargs);
    }
    PyObject *result = NULL;
    int status = dispatch(self, PyTuple_GET_ITEM(args, 0), PyTuple_GET_ITEM(args, 1),
                          PyTuple_GET_ITEM(args, 2), &result);
    return dispatched(op, status, result, args, kwargs);
}

/* The call of `op` through its type's tp_call, from a vectorcall's arguments. */
static PyObject *through_slot(PyObject *op, PyObject *const *args, size_t nargsf,
                              PyObject *kwnames) {
    ternaryfunc call = Py_TYPE(op)->tp_call;
    if (call == NULL) {
        PyErr_Format(PyExc_TypeError, "'%.200s' object is not callable", Py_TYPE(op)->tp_name);
        return NULL;
    }
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    PyObject *tuple = PyTuple_New(nargs), *kwargs = NULL, *result = NULL;
    if (tuple == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < nargs; i++) {
        PyTuple_SET_ITEM(tuple, i, Py_NewRef(args[i]));
    }
    if (kwnames != NULL && PyTuple_GET_SIZE(kwnames) > 0) {
        kwargs = PyDict_New();
        for (Py_ssize_t i = 0; kwargs != NULL && i < PyTuple_GET_SIZE(kwnames); i++) {
            if (PyDict_SetItem(kwargs, PyTuple_GET_ITEM(kwnames, i), args[nargs + i]) < 0) {
                Py_CLEAR(kwargs);
            }
        }
        if (kwargs == NULL) {
            Py_DECREF(tuple);
            return NULL;
        }
    }
    result = call(op, tuple, kwargs);
    Py_DECREF(tuple);
    Py_XDECREF(kwargs);
    return result;
}

/* A call of a fastened class's instance, without a tuple of its arguments. A __call__
 * assigned to the class since (which replaces its tp_call) is honoured. */
static PyObject *front_vectorcall(PyObject *op, PyObject *const *args, size_t nargsf,
                                  PyObject *kwnames) {
    Front *self = (Front *)op;
    if (Py_TYPE(op)->tp_call != front_call || PyVectorcall_NARGS(nargsf) != 3 ||
        (kwnames != NULL && PyTuple_GET_SIZE(kwnames) > 0) || !dispatchable(self, args[0])) {
        return through_slot(op, args, nargsf, kwnames);
    }
    PyObject *result = NULL;
    int status = dispatch(self, args[0], args[1], args[2], &result);
    if (status != LEFT && status != FAILED) {
        return dispatched(op, status, result, NULL, NULL);
    }
    PyObject *tuple = PyTuple_Pack(3, args[0], args[1], args[2]);
    if (tuple == NULL) {
        return NULL;
    }
    result = dispatched(op, status, result, tuple, NULL);
    Py_DECREF(tuple);
    return result;
}

static PyObject *front_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    (void)args;
    (void)kwargs;
    Front *self = (Front *)type->tp_alloc(type, 0);
    if (self != NULL) {
        self->vectorcall = front_vectorcall;
    }
    return (PyObject *)self;
}

static PyObject *front_get_excludes(Front *self, void *closure) {
    (void)closure;
    return PyBool_FromLong(self->excludes);
}

static int front_set_excludes(Front *self, PyObject *value, void *closure) {
    (void)closure;
    if (value == NULL) {
        PyErr_SetString(PyExc_AttributeError, "_excludes cannot be deleted");
        return -1;
    }
    int truth = PyObject_IsTrue(value);
    if (truth < 0) {
        return -1;
    }
    self->excludes = (char)truth;
    return 0;
}

static PyGetSetDef front_getset[] = {
    {"_excludes", (getter)front_get_excludes, (setter)front_set_excludes,
     "Whether the configuration excludes some paths (asked of the engine per request).", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMemberDef front_members[] = {
    {"app", T_OBJECT_EX, offsetof(Front, app), 0, "The ASGI app behind the middleware."},
    {"engine", T_OBJECT_EX, offsetof(Front, engine), 0, "The consent engine."},
    {"_prefix", T_OBJECT_EX, offsetof(Front, prefix), 0, "The package's endpoints' prefix."},
    {"_owned_prefix", T_OBJECT_EX, offsetof(Front, owned_prefix), 0,
     "The prefix followed by a slash."},
    {NULL, 0, 0, 0, NULL},
};

static PyTypeObject FrontType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "mypharm_consent._responder.Front",
    .tp_basicsize = sizeof(Front),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "The compiled base of ConsentMiddleware: its fields, and its call.\n\n"
              "A subclass defines ``__call__`` in Python (the definition, and what servers\n"
              "look up to tell an ASGI 3 app); ``fasten_call(subclass)`` then makes calls\n"
              "go through the compiled dispatch, which hands anything it does not answer to\n"
              "that definition.",
    .tp_new = front_new,
    .tp_vectorcall_offset = offsetof(Front, vectorcall),
    .tp_dealloc = (destructor)front_dealloc,
    .tp_traverse = (traverseproc)front_traverse,
    .tp_clear = (inquiry)front_clear,
    .tp_members = front_members,
    .tp_getset = front_getset,
};

PyDoc_STRVAR(fasten_call_doc,
             "fasten_call(cls, /)\n--\n\n"
             "Make calls of ``cls`` (a subclass of Front written in Python) go through the\n"
             "compiled dispatch. ``cls.__call__`` looked up by name stays the Python\n"
             "definition, which the dispatch hands whatever it does not answer; assigning\n"
             "``cls.__call__`` later makes calls use the new one.");

static PyObject *fasten_call(PyObject *module, PyObject *cls) {
    (void)module;
    if (!PyType_Check(cls) || !PyType_HasFeature((PyTypeObject *)cls, Py_TPFLAGS_HEAPTYPE) ||
        !PyType_IsSubtype((PyTypeObject *)cls, &FrontType)) {
        PyErr_SetString(PyExc_TypeError, "fasten_call() takes a Python subclass of Front");
        return NULL;
    }
    PyObject *own = _PyType_Lookup((PyTypeObject *)cls, str_dunder_call);
    if (own == NULL || PyObject_TypeCheck(own, &PyWrapperDescr_Type)) {
        PyErr_SetString(PyExc_TypeError, "fasten_call() needs a class defining __call__");
        return NULL;
    }
    PyTypeObject *type = (PyTypeObject *)cls;
    type->tp_call = front_call;
    if (type->tp_vectorcall_offset == offsetof(Front, vectorcall) && type->tp_new == front_new) {
        type->tp_flags |= Py_TPFLAGS_HAVE_VECTORCALL;
    }
    Py_RETURN_NONE;
}

PyDoc_STRVAR(configure_doc,
             "configure(responder, subresources, remembered_chars, /)\n--\n\n"
             "What every Front uses: the type called as ``responder(engine, parts, state,\n"
             "send)`` for a response that may be rewritten (its ``send`` is the app's), the\n"
             "set of ``Sec-Fetch-Dest`` values whose responses pass through, and how long a\n"
             "``Cookie`` header the engine remembers (``_MAX_REMEMBERED_COOKIE_CHARS``).");

static PyObject *configure(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    (void)module;
    if (nargs != 3 || !PyType_Check(args[0]) || !PyFrozenSet_CheckExact(args[1]) ||
        !PyLong_CheckExact(args[2])) {
        PyErr_SetString(PyExc_TypeError, "configure() takes a type, a frozenset and an int");
        return NULL;
    }
    Py_ssize_t chars = PyLong_AsSsize_t(args[2]);
    if (chars < 0) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_ValueError, "remembered_chars must not be negative");
        }
        return NULL;
    }
    PyTypeObject *type = (PyTypeObject *)args[0];
    if (!PyType_IsSubtype(type, &ResponderType)) {
        PyErr_SetString(PyExc_TypeError, "configure() takes a subclass of Responder");
        return NULL;
    }
    PyObject *send_method = _PyType_Lookup(type, str_send);
    if (type->tp_call == PyVectorcall_Call &&
        type->tp_vectorcall_offset == offsetof(Responder, vectorcall)) {
        /* A class statement's subclass does not inherit the flag (Python 3.11); its call is
         * Responder's all the same, so it is set here. */
        type->tp_flags |= Py_TPFLAGS_HAVE_VECTORCALL;
    }
    responder_plain = type->tp_init == (initproc)responder_init &&
                      type->tp_new == responder_new && type->tp_alloc == PyType_GenericAlloc &&
                      PyType_HasFeature(type, Py_TPFLAGS_HAVE_VECTORCALL) &&
                      send_method != NULL && PyObject_TypeCheck(send_method, &PyMethodDescr_Type) &&
                      ((PyMethodDescrObject *)send_method)->d_method == &responder_methods[0];
    Py_XSETREF(responder_type, Py_NewRef(args[0]));
    Py_XSETREF(subresources, Py_NewRef(args[1]));
    remembered_chars = chars;
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"rewrites", (PyCFunction)(void (*)(void))rewrites, METH_FASTCALL, rewrites_doc},
    {"request_headers", (PyCFunction)(void (*)(void))request_headers, METH_FASTCALL,
     request_headers_doc},
    {"fasten_call", (PyCFunction)fasten_call, METH_O, fasten_call_doc},
    {"configure", (PyCFunction)(void (*)(void))configure, METH_FASTCALL, configure_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    "mypharm_consent._responder",
    "Compiled send wrapper of ConsentMiddleware (optional; mypharm_consent.asgi holds\n"
    "the definition).",
    0,
    methods,
    NULL,
    NULL,
    NULL,
    NULL,
};

static PyObject *intern(const char *text) { return PyUnicode_InternFromString(text); }

PyMODINIT_FUNC PyInit__responder(void) {
    if (PyType_Ready(&DoneType) < 0 || PyType_Ready(&ResponderType) < 0 ||
        PyType_Ready(&FrontType) < 0 || PyType_Ready(&SendsType) < 0) {
        return NULL;
    }
    str_type = intern("type");
    str_status = intern("status");
    str_headers = intern("headers");
    str_get = intern("get");
    str_start_type = intern("http.response.start");
    str_held = intern("_held");
    str_rewrites = intern("rewrites_raw_response");
    str_dunder_call = intern("__call__");
    str_upper = intern("upper");
    str_first_visit = intern("first_visit");
    str_state_from = intern("state_from");
    str_state = intern("state");
    str_consent = intern("consent");
    str_path = intern("path");
    str_method = intern("method");
    str_is_excluded = intern("is_excluded");
    str_raw_path = intern("raw_path");
    str_query_string = intern("query_string");
    str_send = intern("send");
    str_http = intern("http");
    str_head = intern("HEAD");
    str_body_type = intern("http.response.body");
    str_body = intern("body");
    str_more_body = intern("more_body");
    str_config = intern("config");
    str_html_size_cap = intern("html_size_cap");
    str_rewrite_page = intern("rewrite_page");
    str_give_up = intern("_give_up");
    str_current_cookies = intern("_current_cookies");
    str_cookie = intern("cookie");
    str_clock = intern("clock");
    str_max_age = intern("max_age");
    str_timestamp = intern("timestamp");
    str_states = intern("states");
    PyObject *target = intern("target"), *accept_language = intern("accept_language");
    PyObject *cookie_header = intern("cookie_header"), *host = intern("host");
    if (target && accept_language && cookie_header && host) {
        page_keywords = PyTuple_Pack(4, target, accept_language, cookie_header, host);
    }
    Py_XDECREF(target);
    Py_XDECREF(accept_language);
    Py_XDECREF(cookie_header);
    Py_XDECREF(host);
    empty_tuple = PyTuple_New(0);
    empty_bytes = PyBytes_FromStringAndSize(NULL, 0);
    if (!str_type || !str_status || !str_headers || !str_get || !str_start_type || !str_held ||
        !str_rewrites || !str_dunder_call || !str_upper || !str_first_visit || !str_state_from ||
        !str_state || !str_consent || !str_path || !str_method || !str_is_excluded ||
        !str_raw_path || !str_query_string || !str_send || !str_http || !str_head ||
        !str_body_type || !str_body || !str_more_body || !str_config || !str_html_size_cap ||
        !str_rewrite_page || !str_give_up || !page_keywords || !str_current_cookies ||
        !str_cookie || !str_clock || !str_max_age || !str_timestamp || !str_states || !empty_tuple || !empty_bytes) {
        return NULL;
    }
    done = PyType_GenericNew(&DoneType, NULL, NULL);
    if (done == NULL) {
        return NULL;
    }
    PyObject *result = PyModule_Create(&module);
    if (result == NULL) {
        return NULL;
    }
    if (PyModule_AddObjectRef(result, "Responder", (PyObject *)&ResponderType) < 0 ||
        PyModule_AddObjectRef(result, "Front", (PyObject *)&FrontType) < 0 ||
        PyModule_AddObjectRef(result, "PageAnswer", (PyObject *)&SendsType) < 0 ||
        PyModule_AddObjectRef(result, "DONE", done) < 0) {
        Py_DECREF(result);
        return NULL;
    }
    return result;
}
