/* harness.measure._callgrind: valgrind's callgrind counts the instructions of exactly the calls asked
 * for (harness/measure/count.py). The client requests below are no-ops outside valgrind. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <valgrind/callgrind.h>

/* count(fn, calls, label): collect events while fn() runs `calls` times, then dump them to a
 * file of their own (callgrind's --callgrind-out-file, suffixed .1, .2, ...) described by label.
 * Instrumentation is switched on only around the calls: the rest of the process runs at
 * valgrind's lightest pace. */
static PyObject* count(PyObject* self, PyObject* args)
{
    PyObject* fn;
    Py_ssize_t calls;
    const char* label;
    if (!PyArg_ParseTuple(args, "Ons:count", &fn, &calls, &label)) return NULL;
    if (!RUNNING_ON_VALGRIND) {
        PyErr_SetString(PyExc_RuntimeError,
                        "count: not running under valgrind --tool=callgrind (harness/measure/count.py "
                        "starts the worker so)");
        return NULL;
    }
    CALLGRIND_START_INSTRUMENTATION;
    CALLGRIND_ZERO_STATS;
    CALLGRIND_TOGGLE_COLLECT;
    PyObject* failed = NULL;
    for (Py_ssize_t i = 0; i < calls && !failed; i++) {
        PyObject* out = PyObject_CallNoArgs(fn);
        if (!out) failed = Py_None;  // the exception is set: end the count, then raise it
        Py_XDECREF(out);
    }
    CALLGRIND_TOGGLE_COLLECT;
    CALLGRIND_DUMP_STATS_AT(label);
    CALLGRIND_STOP_INSTRUMENTATION;
    if (failed) return NULL;
    Py_RETURN_NONE;
}

static PyObject* on_valgrind(PyObject* self, PyObject* args)
{
    return PyBool_FromLong(RUNNING_ON_VALGRIND);
}

static PyMethodDef methods[] = {
    {"count", count, METH_VARARGS,
     "count(fn, calls, label): callgrind events of `calls` calls of fn, dumped to a file"},
    {"on_valgrind", on_valgrind, METH_NOARGS, "on_valgrind() -> True under valgrind"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "harness.measure._callgrind",
                                    "Instruction counts of chosen calls, under callgrind.", -1,
                                    methods};

PyMODINIT_FUNC PyInit__callgrind(void) { return PyModule_Create(&module); }
