/* nnladder_c's wrapper of the ceilings' probes (peaks.c), for harness/results/ceilings.py. */
#include "args.h"  // Python.h first, as it asks

#include <string.h>

/* peak(kind, bytes, threads, seconds, isa="auto") -> (rate, the isa it ran): kind "fma"
 * (FLOP/s; bytes unused), "read" or "update" (bytes/s), as peak_rate in nnladder.h says. */
PyObject* py_peak(PyObject* self, PyObject* args)
{
    static const char* KINDS[] = {"fma", "read", "update"};  // PEAK_FMA, PEAK_READ, PEAK_UPDATE
    const char *kind_name, *isa = "auto";
    Py_ssize_t bytes;
    int threads, kind = -1;
    double seconds, rate;
    if (!PyArg_ParseTuple(args, "snid|s:peak", &kind_name, &bytes, &threads, &seconds, &isa)) {
        return NULL;
    }
    for (int i = 0; i < 3; i++) {
        if (strcmp(kind_name, KINDS[i]) == 0) kind = i;
    }
    const char* used = peak_isa(isa);
    if (kind < 0) {
        return PyErr_Format(PyExc_ValueError, "peak: kind must be 'fma', 'read' or 'update', "
                            "got '%s'", kind_name);
    }
    if (used == NULL) {
        return PyErr_Format(PyExc_ValueError, "peak: isa must be 'auto' or one this CPU runs "
                            "('avx512', 'avx2', 'generic'), got '%s'", isa);
    }
    if (kind != PEAK_FMA && bytes < 1) {
        return PyErr_Format(PyExc_ValueError, "peak: bytes must be >= 1 for '%s', got %zd",
                            kind_name, bytes);
    }
    if (threads < 1) {
        return PyErr_Format(PyExc_ValueError, "peak: threads must be >= 1, got %d", threads);
    }
    if (!(seconds > 0 && seconds <= 60)) {  // also refuses NaN
        return PyErr_Format(PyExc_ValueError, "peak: seconds must be in (0, 60], got %R",
                            PyTuple_GET_ITEM(args, 3));
    }
    Py_BEGIN_ALLOW_THREADS
    rate = peak_rate(kind, isa, bytes, threads, seconds);
    Py_END_ALLOW_THREADS
    if (rate == -1.0) return PyErr_NoMemory();
    return Py_BuildValue("(ds)", rate, used);
}

/* peak_isas() -> the isas this CPU runs, widest first: ("avx512", "avx2", "generic") here. */
PyObject* py_peak_isas(PyObject* self, PyObject* args)
{
    static const char* ISAS[] = {"avx512", "avx2", "generic"};
    PyObject* names = PyList_New(0);
    for (int i = 0; names && i < 3; i++) {
        PyObject* name = peak_isa(ISAS[i]) ? PyUnicode_FromString(ISAS[i]) : NULL;
        if (name && PyList_Append(names, name)) Py_CLEAR(names);
        Py_XDECREF(name);
    }
    return names;
}
