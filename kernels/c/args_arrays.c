/* One argument at a time, for the spec (args.c) and the wrappers that check by hand
 * (module_mlp.c, module_conv.c): ndarray and float32 (else TypeError) with the axes its name
 * spells (else ValueError); two arrays' axes that must agree; labels integer, one per row, each
 * an index into its axis. Every message names the op, the argument and its shape. */
#include "args.h"

const char* suffix(const char* name)
{
    const char* underscore = strrchr(name, '_');
    return underscore ? underscore + 1 : "";
}

int any_shape(const char* name)
{
    const char* letters = suffix(name);
    return !*letters || !strcmp(letters, ANY_SHAPE);
}

PyObject* shape_text(PyArrayObject* arr)
{
    PyObject* dims = PyTuple_New(PyArray_NDIM(arr));
    if (!dims) return NULL;
    for (int i = 0; i < PyArray_NDIM(arr); i++) {
        PyTuple_SET_ITEM(dims, i, PyLong_FromSsize_t(PyArray_DIM(arr, i)));
    }
    PyObject* text = PyObject_Str(dims);
    Py_DECREF(dims);
    return text;
}

// Raise `type` with "<op>: <name> <what> <shape of arr>".
void fail_with_shape(PyObject* type, const char* op, const char* name, const char* what,
                     PyArrayObject* arr)
{
    PyObject* shape = shape_text(arr);
    if (!shape) return;
    PyErr_Format(type, "%s: %s %s %U", op, name, what, shape);
    Py_DECREF(shape);
}

/* obj as a float32 ndarray with the axes its name spells: a new reference, to obj itself when
 * it is already C-contiguous, aligned and native-endian, else to a copy. NULL with an error. */
PyArrayObject* as_input(const char* op, const char* name, PyObject* obj)
{
    const int ndim = any_shape(name) ? 0 : (int)strlen(suffix(name));
    if (!PyArray_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s: %s must be a numpy.ndarray of float32, got %s", op,
                     name, Py_TYPE(obj)->tp_name);
        return NULL;
    }
    PyArrayObject* arr = (PyArrayObject*)obj;
    if (PyArray_TYPE(arr) != NPY_FLOAT32) {
        PyObject* shape = shape_text(arr);
        if (shape) {
            PyErr_Format(PyExc_TypeError, "%s: %s must have dtype float32, got %R with shape %U",
                         op, name, (PyObject*)PyArray_DESCR(arr), shape);
            Py_DECREF(shape);
        }
        return NULL;
    }
    if (ndim && PyArray_NDIM(arr) != ndim) {
        char what[64];
        snprintf(what, sizeof what, "must have %d axes (%s), got shape", ndim, suffix(name));
        fail_with_shape(PyExc_ValueError, op, name, what, arr);
        return NULL;
    }
    if (!strcmp(suffix(name), ANY_SHAPE) && PyArray_NDIM(arr) == 0) {
        fail_with_shape(PyExc_ValueError, op, name, "needs at least one axis, got shape", arr);
        return NULL;
    }
    return (PyArrayObject*)PyArray_FROM_OTF(obj, NPY_FLOAT32, NPY_ARRAY_IN_ARRAY);
}

PyArrayObject* as_inout(const char* op, const char* name, PyObject* obj)
{
    PyArrayObject* arr = as_input(op, name, obj);
    if (arr && (PyObject*)arr != obj) {
        fail_with_shape(PyExc_ValueError, op, name,
                        "is updated in place, so it must be C-contiguous, aligned and "
                        "native-endian; got a strided or byte-swapped array of shape", arr);
        Py_DECREF(arr);
        return NULL;
    }
    if (arr && !PyArray_ISWRITEABLE(arr)) {
        fail_with_shape(PyExc_ValueError, op, name,
                        "is updated in place, so it must be writeable; got a read-only array "
                        "of shape", arr);
        Py_DECREF(arr);
        return NULL;
    }
    return arr;
}

// 0 when axis i of a and axis j of b have one size; else -1 with a ValueError naming both.
int agree(const char* op, const char* name_a, PyArrayObject* a, int i, const char* name_b,
          PyArrayObject* b, int j)
{
    if (PyArray_DIM(a, i) == PyArray_DIM(b, j)) return 0;
    char axes[32];  // "K axes" by the name's letter; "axes 1" for an any-shape name
    if (!any_shape(name_a)) snprintf(axes, sizeof axes, "%c axes", suffix(name_a)[i]);
    else snprintf(axes, sizeof axes, "axes %d", i);
    PyObject* shape_a = shape_text(a);
    PyObject* shape_b = shape_text(b);
    if (shape_a && shape_b) {
        PyErr_Format(PyExc_ValueError, "%s: %s has shape %U but %s has shape %U: their %s must "
                     "agree (%zd vs %zd)", op, name_a, shape_a, name_b, shape_b, axes,
                     PyArray_DIM(a, i), PyArray_DIM(b, j));
    }
    Py_XDECREF(shape_a);
    Py_XDECREF(shape_b);
    return -1;
}

int same_shape(const char* op, const char* name_a, PyArrayObject* a, const char* name_b,
               PyArrayObject* b)
{
    if (PyArray_NDIM(a) != PyArray_NDIM(b)) {
        PyObject* shape_a = shape_text(a);
        PyObject* shape_b = shape_text(b);
        if (shape_a && shape_b) {
            PyErr_Format(PyExc_ValueError, "%s: %s has shape %U but %s has shape %U: they must "
                         "have the same shape", op, name_a, shape_a, name_b, shape_b);
        }
        Py_XDECREF(shape_a);
        Py_XDECREF(shape_b);
        return -1;
    }
    for (int i = 0; i < PyArray_NDIM(a); i++) {
        if (agree(op, name_a, a, i, name_b, b, i)) return -1;
    }
    return 0;
}

/* Labels as contiguous int64, B of them (any number for B < 0), each in [0, C): one past C
 * would index off its row. Token ids (a name "tokens...", as the contract's role_of) are
 * said to be token ids, the rest class indices. */
PyArrayObject* as_labels(const char* op, const char* name, PyObject* obj, npy_intp B, npy_intp C)
{
    if (!PyArray_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s: %s must be a 1-d integer numpy.ndarray, got %s", op,
                     name, Py_TYPE(obj)->tp_name);
        return NULL;
    }
    if (!PyArray_ISINTEGER((PyArrayObject*)obj) || PyArray_NDIM((PyArrayObject*)obj) != 1) {
        char what[96];
        snprintf(what, sizeof what, "must be a 1-d integer array, got dtype %s with shape",
                 PyArray_DESCR((PyArrayObject*)obj)->typeobj->tp_name);
        fail_with_shape(PyExc_TypeError, op, name, what, (PyArrayObject*)obj);
        return NULL;
    }
    if (B >= 0 && PyArray_DIM((PyArrayObject*)obj, 0) != B) {
        PyErr_Format(PyExc_ValueError, "%s: %s has %zd labels, expected one per row: %zd", op,
                     name, PyArray_DIM((PyArrayObject*)obj, 0), B);
        return NULL;
    }
    PyArrayObject* labels = (PyArrayObject*)PyArray_FROM_OTF(obj, NPY_INT64, NPY_ARRAY_IN_ARRAY);
    if (!labels) return NULL;
    const int64_t* labels_B = PyArray_DATA(labels);
    const char* what = strncmp(name, "tokens", 6) ? "a class index" : "a token id";
    for (npy_intp b = 0; b < PyArray_DIM(labels, 0); b++) {
        if (labels_B[b] < 0 || labels_B[b] >= C) {
            PyErr_Format(PyExc_ValueError, "%s: %s[%zd] is %lld, expected %s in [0, %zd)", op,
                         name, b, (long long)labels_B[b], what, C);
            Py_DECREF(labels);
            return NULL;
        }
    }
    return labels;
}

int check_rung(int rung)
{
    if (rung >= GEMM_NAIVE && rung <= GEMM_THREADS) return 0;
    PyErr_Format(PyExc_ValueError, "rung must be 1 (naive), 2 (loops), 3 (blocked) or "
                 "4 (threads), got %d", rung);
    return -1;
}
