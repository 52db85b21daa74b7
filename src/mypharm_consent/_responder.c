/*
 * Optional compiled send wrapper of ConsentMiddleware (mypharm_consent._responder).
 *
 * Every response of a site behind the middleware goes through its send
 * wrapper, HTML or not: at "http.response.start" the wrapper tells an
 * uncompressed HTML body (held back, to be rewritten) from anything else
 * (handed on as it is, message by message). For the responses that are not
 * HTML, which are most of a site's (APIs, files, redirects), that is all the
 * middleware does, so it is written here in C. The Python definitions in
 * mypharm_consent/asgi.py (_PyResponder, read_request_headers) and
 * ConsentEngine.rewrites_raw_response stay the reference, used alone when
 * this module is missing or when MYPHARM_CONSENT_SPEEDUPS is 0; property
 * tests compare the two. Anything of an unusual type (a status that is not an
 * int, headers that are not a list or tuple of pairs of bytes) is judged by
 * the engine's Python method itself.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

static PyObject *str_type, *str_status, *str_headers, *str_get, *str_start_type;
static PyObject *str_held, *str_rewrites;
static PyObject *done;

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

static PyObject *request_headers(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    (void)module;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "request_headers() takes a definition and the headers");
        return NULL;
    }
    PyObject *definition = args[0], *headers = args[1];
    if (!PyList_CheckExact(headers) && !PyTuple_CheckExact(headers)) {
        return PyObject_CallOneArg(definition, headers);
    }
    PyObject *cookie = NULL, *gpc = NULL, *destination = NULL;
    Py_ssize_t count = PySequence_Fast_GET_SIZE(headers);
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *pair = PySequence_Fast_GET_ITEM(headers, i);
        if (!PyTuple_CheckExact(pair) || PyTuple_GET_SIZE(pair) != 2 ||
            !PyBytes_CheckExact(PyTuple_GET_ITEM(pair, 0)) ||
            !PyBytes_CheckExact(PyTuple_GET_ITEM(pair, 1))) {
            Py_XDECREF(cookie);
            Py_XDECREF(gpc);
            Py_XDECREF(destination);
            return PyObject_CallOneArg(definition, headers);
        }
        PyObject *name = PyTuple_GET_ITEM(pair, 0), *value = PyTuple_GET_ITEM(pair, 1);
        Py_ssize_t size = PyBytes_GET_SIZE(name);
        const char *data = PyBytes_AS_STRING(name);
        int status = 0;
        /* Names compared as they are: ASGI servers hand them over lower-cased. */
        if (size == 6 && memcmp(data, "cookie", 6) == 0) {
            status = join_into(&cookie, value, "; ");
        } else if (size == 7 && memcmp(data, "sec-gpc", 7) == 0) {
            status = join_into(&gpc, value, ", ");
        } else if (size == 14 && memcmp(data, "sec-fetch-dest", 14) == 0) {
            Py_XSETREF(destination, Py_NewRef(value));
        }
        if (status < 0) {
            Py_XDECREF(cookie);
            Py_XDECREF(gpc);
            Py_XDECREF(destination);
            return NULL;
        }
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
    return PyObject_CallMethodOneArg((PyObject *)self, str_held, message);
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
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Responder(engine, parts, state, send): one response on its way out.\n\n"
              "A subclass provides ``_held(message)``, awaited for every message after\n"
              "the start of a response held back.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)responder_init,
    .tp_dealloc = (destructor)responder_dealloc,
    .tp_traverse = (traverseproc)responder_traverse,
    .tp_clear = (inquiry)responder_clear,
    .tp_methods = responder_methods,
    .tp_members = responder_members,
    .tp_getset = responder_getset,
};

static PyMethodDef methods[] = {
    {"rewrites", (PyCFunction)(void (*)(void))rewrites, METH_FASTCALL, rewrites_doc},
    {"request_headers", (PyCFunction)(void (*)(void))request_headers, METH_FASTCALL,
     request_headers_doc},
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
    if (PyType_Ready(&DoneType) < 0 || PyType_Ready(&ResponderType) < 0) {
        return NULL;
    }
    str_type = intern("type");
    str_status = intern("status");
    str_headers = intern("headers");
    str_get = intern("get");
    str_start_type = intern("http.response.start");
    str_held = intern("_held");
    str_rewrites = intern("rewrites_raw_response");
    if (!str_type || !str_status || !str_headers || !str_get || !str_start_type || !str_held ||
        !str_rewrites) {
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
        PyModule_AddObjectRef(result, "DONE", done) < 0) {
        Py_DECREF(result);
        return NULL;
    }
    return result;
}
