/*
 * An awaitable that sends ASGI messages through a `send`, awaiting each in turn: what
 * `await send(first); await send(second)` does in a coroutine, without one. Shared by the
 * compiled accelerators (beacon._speedups answers the pixel with it,
 * mypharm_consent._responder a rewritten page).
 *
 * Include it once in an extension, with SENDS_TYPE_NAME defined as the type's dotted name;
 * call PyType_Ready(&SendsType) when the module is made.
 */

#ifndef ASGI_SENDS_H
#define ASGI_SENDS_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#ifndef SENDS_TYPE_NAME
#error "define SENDS_TYPE_NAME before including asgi_sends.h"
#endif

typedef struct {
    PyObject_HEAD
    PyObject *send;
    PyObject *messages[2];
    PyObject *inner; /* the iterator of the message being sent, while it is suspended */
    int count;       /* messages to send */
    int step;        /* messages handed to `send` so far */
} Sends;

static PyTypeObject SendsType;

/* An awaitable sending `first` and then `second` (when not NULL) through `send`. */
static PyObject *sends_new(PyObject *send, PyObject *first, PyObject *second) {
    Sends *self = PyObject_GC_New(Sends, &SendsType);
    if (self == NULL) {
        return NULL;
    }
    self->send = Py_NewRef(send);
    self->messages[0] = Py_NewRef(first);
    self->messages[1] = Py_XNewRef(second);
    self->inner = NULL;
    self->count = second == NULL ? 1 : 2;
    self->step = 0;
    PyObject_GC_Track((PyObject *)self);
    return (PyObject *)self;
}

/* The iterator to drive for an awaitable (what `await` asks of it). */
static PyObject *sends_iterator_of(PyObject *awaitable) {
    if (PyCoro_CheckExact(awaitable)) {
        return Py_NewRef(awaitable);
    }
    PyAsyncMethods *methods = Py_TYPE(awaitable)->tp_as_async;
    if (methods == NULL || methods->am_await == NULL) {
        PyErr_Format(PyExc_TypeError, "object %.100s can't be used in 'await' expression",
                     Py_TYPE(awaitable)->tp_name);
        return NULL;
    }
    PyObject *iterator = methods->am_await(awaitable);
    if (iterator != NULL && !PyIter_Check(iterator)) {
        PyErr_Format(PyExc_TypeError, "__await__() returned non-iterator of type '%.100s'",
                     Py_TYPE(iterator)->tp_name);
        Py_CLEAR(iterator);
    }
    return iterator;
}

/* Resume with `value`: PYGEN_NEXT with what the message being sent yields (to the event
 * loop), PYGEN_RETURN with None once all are sent, PYGEN_ERROR with an exception set. */
static PySendResult sends_am_send(PyObject *object, PyObject *value, PyObject **result) {
    Sends *self = (Sends *)object;
    for (;;) {
        if (self->inner == NULL) {
            if (self->step >= self->count) {
                *result = Py_NewRef(Py_None);
                return PYGEN_RETURN;
            }
            PyObject *message = self->messages[self->step];
            self->messages[self->step] = NULL;
            self->step++;
            PyObject *awaitable = PyObject_CallOneArg(self->send, message);
            Py_DECREF(message);
            if (awaitable == NULL) {
                *result = NULL;
                return PYGEN_ERROR;
            }
            self->inner = sends_iterator_of(awaitable);
            Py_DECREF(awaitable);
            if (self->inner == NULL) {
                *result = NULL;
                return PYGEN_ERROR;
            }
            value = Py_None;
        }
        PyObject *out;
        PySendResult status = PyIter_Send(self->inner, value, &out);
        if (status == PYGEN_NEXT) {
            *result = out;
            return PYGEN_NEXT;
        }
        Py_CLEAR(self->inner);
        if (status == PYGEN_ERROR) {
            *result = NULL;
            return PYGEN_ERROR;
        }
        Py_DECREF(out);
        value = Py_None;
    }
}

/* No message is sent any more: the ones left are let go. */
static void sends_stop(Sends *self) {
    self->step = self->count;
    Py_CLEAR(self->messages[0]);
    Py_CLEAR(self->messages[1]);
}

/* The iterator protocol and the generator methods, over sends_am_send(). */
static PyObject *sends_iternext(PyObject *self) {
    PyObject *result;
    PySendResult status = sends_am_send(self, Py_None, &result);
    if (status == PYGEN_RETURN) {
        Py_DECREF(result);
        return NULL;
    }
    return result;
}

static PyObject *sends_send(PyObject *self, PyObject *value) {
    PyObject *result;
    PySendResult status = sends_am_send(self, value, &result);
    if (status == PYGEN_RETURN) {
        Py_DECREF(result);
        PyErr_SetNone(PyExc_StopIteration);
        return NULL;
    }
    return result;
}

/* An exception thrown in while a message is being sent goes to its iterator, as `await`
 * would pass it on; thrown in between, it is raised here. */
static PyObject *sends_throw(Sends *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs < 1 || nargs > 3) {
        PyErr_SetString(PyExc_TypeError, "throw expected 1 to 3 arguments");
        return NULL;
    }
    if (self->inner != NULL) {
        PyObject *throw = PyObject_GetAttrString(self->inner, "throw");
        if (throw != NULL) {
            PyObject *out = PyObject_Vectorcall(throw, args, (size_t)nargs, NULL);
            Py_DECREF(throw);
            if (out != NULL) {
                return out;
            }
            Py_CLEAR(self->inner);
            if (!PyErr_ExceptionMatches(PyExc_StopIteration)) {
                return NULL;
            }
            /* The message's sender handled it and finished: carry on with the next. */
            PyErr_Clear();
            return sends_send((PyObject *)self, Py_None);
        }
        PyErr_Clear();
        Py_CLEAR(self->inner);
    }
    sends_stop(self);
    PyObject *given = args[0];
    if (PyExceptionInstance_Check(given)) {
        PyErr_SetObject((PyObject *)Py_TYPE(given), given);
    } else if (PyExceptionClass_Check(given)) {
        PyErr_SetObject(given, nargs > 1 ? args[1] : NULL);
    } else {
        PyErr_SetString(PyExc_TypeError,
                        "exceptions must be classes or instances deriving from BaseException");
    }
    return NULL;
}

static PyObject *sends_close(Sends *self, PyObject *Py_UNUSED(ignored)) {
    sends_stop(self);
    PyObject *inner = self->inner;
    self->inner = NULL;
    if (inner != NULL) {
        PyObject *close = PyObject_GetAttrString(inner, "close");
        Py_DECREF(inner);
        if (close == NULL) {
            PyErr_Clear();
        } else {
            PyObject *out = PyObject_CallNoArgs(close);
            Py_DECREF(close);
            if (out == NULL) {
                return NULL;
            }
            Py_DECREF(out);
        }
    }
    Py_RETURN_NONE;
}

static int sends_traverse(Sends *self, visitproc visit, void *arg) {
    Py_VISIT(self->send);
    Py_VISIT(self->messages[0]);
    Py_VISIT(self->messages[1]);
    Py_VISIT(self->inner);
    return 0;
}

static int sends_clear(Sends *self) {
    Py_CLEAR(self->send);
    Py_CLEAR(self->messages[0]);
    Py_CLEAR(self->messages[1]);
    Py_CLEAR(self->inner);
    return 0;
}

static void sends_dealloc(Sends *self) {
    PyObject_GC_UnTrack(self);
    sends_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *sends_await(PyObject *self) { return Py_NewRef(self); }

static PyAsyncMethods sends_async = {
    .am_await = sends_await,
    .am_send = sends_am_send,
};

static PyMethodDef sends_methods[] = {
    {"send", (PyCFunction)sends_send, METH_O, "Resume sending with a value."},
    {"throw", (PyCFunction)(void (*)(void))sends_throw, METH_FASTCALL,
     "Raise an exception where the sending is suspended."},
    {"close", (PyCFunction)sends_close, METH_NOARGS, "Stop sending."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject SendsType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = SENDS_TYPE_NAME,
    .tp_doc = "Messages being sent: awaited once, it sends each through the server's\n"
              "``send`` in turn, awaiting each.",
    .tp_basicsize = sizeof(Sends),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_as_async = &sends_async,
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = sends_iternext,
    .tp_methods = sends_methods,
    .tp_traverse = (traverseproc)sends_traverse,
    .tp_clear = (inquiry)sends_clear,
    .tp_dealloc = (destructor)sends_dealloc,
};

#endif /* ASGI_SENDS_H */
