/* nnladder_c: the Python face of the C rung, one function per contract op.
 *
 * Every function checks its arguments before any kernel sees a pointer: an ndarray (else
 * TypeError), dtype float32 (else TypeError), the number of axes its shape suffix spells and
 * axis sizes that agree (else ValueError naming both arrays and their shapes). Inputs that are
 * not C-contiguous, aligned and native-endian are copied; arrays updated in place (optimizer
 * state) cannot be copied, so such arrays are refused. Outputs are new arrays; the only memory
 * the kernels allocate is GEMM's packing buffers, freed before they return. The GIL is released
 * while a kernel runs. `rung` picks the GEMM (1 naive, 2 loops, 3 blocked, 4 threads).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#include <numpy/arrayobject.h>

#include "nnladder.h"

#undef I  // complex.h's imaginary unit, via NumPy: here I is the contract's input-features letter

// ---- argument checks ------------------------------------------------------------------------

// The axis letters of a shape-suffixed name: "a_MK" -> "MK"; "" for a name without a suffix.
static const char* suffix(const char* name)
{
    const char* underscore = strrchr(name, '_');
    return underscore ? underscore + 1 : "";
}

// "(3, 4)", "(5,)": a shape as NumPy prints it, for error messages.
static PyObject* shape_text(PyArrayObject* arr)
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

// Raise `type` with "<op>: <name> <message> <shape of arr>".
static void fail_with_shape(PyObject* type, const char* op, const char* name, const char* what,
                            PyArrayObject* arr)
{
    PyObject* shape = shape_text(arr);
    if (!shape) return;
    PyErr_Format(type, "%s: %s %s %U", op, name, what, shape);
    Py_DECREF(shape);
}

/* obj as a float32 ndarray with the axes its name spells: a new reference, to obj itself when
 * it is already C-contiguous, aligned and native-endian, else to a copy. NULL with an error. */
static PyArrayObject* as_input(const char* op, const char* name, PyObject* obj)
{
    const int ndim = (int)strlen(suffix(name));
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
    return (PyArrayObject*)PyArray_FROM_OTF(obj, NPY_FLOAT32, NPY_ARRAY_IN_ARRAY);
}

// An array to update in place: as as_input, but a copy would lose the update, so refuse instead.
static PyArrayObject* as_inout(const char* op, const char* name, PyObject* obj)
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
static int agree(const char* op, const char* name_a, PyArrayObject* a, int i, const char* name_b,
                 PyArrayObject* b, int j)
{
    if (PyArray_DIM(a, i) == PyArray_DIM(b, j)) return 0;
    char axes[32];  // "K axes" by the name's letter; "axes 1" for a name without a suffix
    if ((int)strlen(suffix(name_a)) > i) snprintf(axes, sizeof axes, "%c axes", suffix(name_a)[i]);
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

// Every axis of a against the same axis of b (elementwise ops, optimizer state).
static int same_shape(const char* op, const char* name_a, PyArrayObject* a, const char* name_b,
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

/* Class labels as a contiguous int64 array of B entries, each in [0, C): a label out of range
 * would index past the end of a row, so it is refused here. NULL with an error. */
static PyArrayObject* as_labels(const char* op, const char* name, PyObject* obj, npy_intp B,
                                npy_intp C)
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
    if (PyArray_DIM((PyArrayObject*)obj, 0) != B) {
        PyErr_Format(PyExc_ValueError, "%s: %s has %zd labels, expected one per row: %zd", op,
                     name, PyArray_DIM((PyArrayObject*)obj, 0), B);
        return NULL;
    }
    PyArrayObject* labels = (PyArrayObject*)PyArray_FROM_OTF(obj, NPY_INT64, NPY_ARRAY_IN_ARRAY);
    if (!labels) return NULL;
    const int64_t* labels_B = PyArray_DATA(labels);
    for (npy_intp b = 0; b < B; b++) {
        if (labels_B[b] < 0 || labels_B[b] >= C) {
            PyErr_Format(PyExc_ValueError, "%s: %s[%zd] is %lld, expected a class index in "
                         "[0, %zd)", op, name, b, (long long)labels_B[b], C);
            Py_DECREF(labels);
            return NULL;
        }
    }
    return labels;
}

static int check_rung(int rung)
{
    if (rung >= GEMM_NAIVE && rung <= GEMM_THREADS) return 0;
    PyErr_Format(PyExc_ValueError, "rung must be 1 (naive), 2 (loops), 3 (blocked) or "
                 "4 (threads), got %d", rung);
    return -1;
}

static PyArrayObject* new_f32(int ndim, const npy_intp* dims)
{
    return (PyArrayObject*)PyArray_SimpleNew(ndim, (npy_intp*)dims, NPY_FLOAT32);
}

static float* f32(PyArrayObject* arr) { return (float*)PyArray_DATA(arr); }

// Row-major views of a 2-d or per-batch (rows, cols) matrix, as is and transposed.
static view rows_of(PyArrayObject* arr, npy_intp cols) { return (view){f32(arr), cols, 1}; }
static view transposed(PyArrayObject* arr, npy_intp cols) { return (view){f32(arr), 1, cols}; }

static int threads_for(int rung) { return rung == GEMM_THREADS ? gemm_max_threads() : 1; }

// ---- products ------------------------------------------------------------------------------

static PyObject* py_matmul(PyObject* self, PyObject* args)
{
    PyObject *a_obj, *b_obj;
    int rung, failed = 0;
    if (!PyArg_ParseTuple(args, "OOi:matmul", &a_obj, &b_obj, &rung) || check_rung(rung)) {
        return NULL;
    }
    PyArrayObject *a_MK = NULL, *b_KN = NULL, *c_MN = NULL;
    if (!(a_MK = as_input("matmul", "a_MK", a_obj)) || !(b_KN = as_input("matmul", "b_KN", b_obj))
        || agree("matmul", "a_MK", a_MK, 1, "b_KN", b_KN, 0)) goto done;
    const npy_intp M = PyArray_DIM(a_MK, 0), K = PyArray_DIM(a_MK, 1), N = PyArray_DIM(b_KN, 1);
    if (!(c_MN = new_f32(2, (npy_intp[]){M, N}))) goto done;
    const int threads = threads_for(rung);
    Py_BEGIN_ALLOW_THREADS
    failed = gemm(rung, M, N, K, rows_of(a_MK, K), rows_of(b_KN, N), f32(c_MN), N, 0, threads);
    Py_END_ALLOW_THREADS
    if (failed) {
        Py_CLEAR(c_MN);
        PyErr_NoMemory();
    }
done:
    Py_XDECREF(a_MK);
    Py_XDECREF(b_KN);
    return (PyObject*)c_MN;
}

static PyObject* py_matmul_bwd(PyObject* self, PyObject* args)
{
    PyObject *a_obj, *b_obj, *dc_obj, *result = NULL;
    int rung, failed = 0;
    if (!PyArg_ParseTuple(args, "OOOi:matmul_bwd", &a_obj, &b_obj, &dc_obj, &rung)
        || check_rung(rung)) return NULL;
    const char* op = "matmul_bwd";
    PyArrayObject *a_MK = NULL, *b_KN = NULL, *dc_MN = NULL, *da_MK = NULL, *db_KN = NULL;
    if (!(a_MK = as_input(op, "a_MK", a_obj)) || !(b_KN = as_input(op, "b_KN", b_obj))
        || !(dc_MN = as_input(op, "dc_MN", dc_obj))
        || agree(op, "a_MK", a_MK, 1, "b_KN", b_KN, 0)
        || agree(op, "a_MK", a_MK, 0, "dc_MN", dc_MN, 0)
        || agree(op, "b_KN", b_KN, 1, "dc_MN", dc_MN, 1)) goto done;
    const npy_intp M = PyArray_DIM(a_MK, 0), K = PyArray_DIM(a_MK, 1), N = PyArray_DIM(b_KN, 1);
    if (!(da_MK = new_f32(2, (npy_intp[]){M, K})) || !(db_KN = new_f32(2, (npy_intp[]){K, N}))) {
        goto done;
    }
    const int threads = threads_for(rung);
    Py_BEGIN_ALLOW_THREADS
    // da = dc @ b^T (contract over N); db = a^T @ dc (contract over M)
    failed = gemm_pair(rung, (gemm_call){M, K, N, rows_of(dc_MN, N), transposed(b_KN, N),
                                         f32(da_MK), K, 0},
                       (gemm_call){K, N, M, transposed(a_MK, K), rows_of(dc_MN, N), f32(db_KN),
                                   N, 0}, threads);
    Py_END_ALLOW_THREADS
    result = failed ? PyErr_NoMemory() : PyTuple_Pack(2, da_MK, db_KN);
done:
    Py_XDECREF(a_MK);
    Py_XDECREF(b_KN);
    Py_XDECREF(dc_MN);
    Py_XDECREF(da_MK);
    Py_XDECREF(db_KN);
    return result;
}

static PyObject* py_bmm(PyObject* self, PyObject* args)
{
    PyObject *a_obj, *b_obj;
    int rung, failed = 0;
    if (!PyArg_ParseTuple(args, "OOi:bmm", &a_obj, &b_obj, &rung) || check_rung(rung)) {
        return NULL;
    }
    PyArrayObject *a_XMK = NULL, *b_XKN = NULL, *c_XMN = NULL;
    if (!(a_XMK = as_input("bmm", "a_XMK", a_obj)) || !(b_XKN = as_input("bmm", "b_XKN", b_obj))
        || agree("bmm", "a_XMK", a_XMK, 0, "b_XKN", b_XKN, 0)
        || agree("bmm", "a_XMK", a_XMK, 2, "b_XKN", b_XKN, 1)) goto done;
    const npy_intp X = PyArray_DIM(a_XMK, 0), M = PyArray_DIM(a_XMK, 1),
                   K = PyArray_DIM(a_XMK, 2), N = PyArray_DIM(b_XKN, 2);
    if (!(c_XMN = new_f32(3, (npy_intp[]){X, M, N}))) goto done;
    const int threads = threads_for(rung);
    Py_BEGIN_ALLOW_THREADS
    failed = gemm_batched(rung, X, M, N, K, rows_of(a_XMK, K), M * K, rows_of(b_XKN, N), K * N,
                          f32(c_XMN), threads);
    Py_END_ALLOW_THREADS
    if (failed) {
        Py_CLEAR(c_XMN);
        PyErr_NoMemory();
    }
done:
    Py_XDECREF(a_XMK);
    Py_XDECREF(b_XKN);
    return (PyObject*)c_XMN;
}

static PyObject* py_bmm_bwd(PyObject* self, PyObject* args)
{
    PyObject *a_obj, *b_obj, *dc_obj, *result = NULL;
    int rung, failed = 0;
    if (!PyArg_ParseTuple(args, "OOOi:bmm_bwd", &a_obj, &b_obj, &dc_obj, &rung)
        || check_rung(rung)) return NULL;
    const char* op = "bmm_bwd";
    PyArrayObject *a_XMK = NULL, *b_XKN = NULL, *dc_XMN = NULL, *da_XMK = NULL, *db_XKN = NULL;
    if (!(a_XMK = as_input(op, "a_XMK", a_obj)) || !(b_XKN = as_input(op, "b_XKN", b_obj))
        || !(dc_XMN = as_input(op, "dc_XMN", dc_obj))
        || agree(op, "a_XMK", a_XMK, 0, "b_XKN", b_XKN, 0)
        || agree(op, "a_XMK", a_XMK, 2, "b_XKN", b_XKN, 1)
        || agree(op, "a_XMK", a_XMK, 0, "dc_XMN", dc_XMN, 0)
        || agree(op, "a_XMK", a_XMK, 1, "dc_XMN", dc_XMN, 1)
        || agree(op, "b_XKN", b_XKN, 2, "dc_XMN", dc_XMN, 2)) goto done;
    const npy_intp X = PyArray_DIM(a_XMK, 0), M = PyArray_DIM(a_XMK, 1),
                   K = PyArray_DIM(a_XMK, 2), N = PyArray_DIM(b_XKN, 2);
    if (!(da_XMK = new_f32(3, (npy_intp[]){X, M, K}))
        || !(db_XKN = new_f32(3, (npy_intp[]){X, K, N}))) goto done;
    const int threads = threads_for(rung);
    Py_BEGIN_ALLOW_THREADS
    // per batch: da = dc @ b^T (contract over N); db = a^T @ dc (contract over M)
    failed = gemm_batched(rung, X, M, K, N, rows_of(dc_XMN, N), M * N, transposed(b_XKN, N),
                          K * N, f32(da_XMK), threads)
             || gemm_batched(rung, X, K, N, M, transposed(a_XMK, K), M * K, rows_of(dc_XMN, N),
                             M * N, f32(db_XKN), threads);
    Py_END_ALLOW_THREADS
    result = failed ? PyErr_NoMemory() : PyTuple_Pack(2, da_XMK, db_XKN);
done:
    Py_XDECREF(a_XMK);
    Py_XDECREF(b_XKN);
    Py_XDECREF(dc_XMN);
    Py_XDECREF(da_XMK);
    Py_XDECREF(db_XKN);
    return result;
}

static PyObject* py_linear(PyObject* self, PyObject* args)
{
    PyObject *x_obj, *w_obj, *b_obj;
    int rung, failed = 0;
    if (!PyArg_ParseTuple(args, "OOOi:linear", &x_obj, &w_obj, &b_obj, &rung)
        || check_rung(rung)) return NULL;
    PyArrayObject *x_BI = NULL, *w_IO = NULL, *b_O = NULL, *y_BO = NULL;
    if (!(x_BI = as_input("linear", "x_BI", x_obj)) || !(w_IO = as_input("linear", "w_IO", w_obj))
        || !(b_O = as_input("linear", "b_O", b_obj))
        || agree("linear", "x_BI", x_BI, 1, "w_IO", w_IO, 0)
        || agree("linear", "w_IO", w_IO, 1, "b_O", b_O, 0)) goto done;
    const npy_intp B = PyArray_DIM(x_BI, 0), I = PyArray_DIM(x_BI, 1), O = PyArray_DIM(w_IO, 1);
    if (!(y_BO = new_f32(2, (npy_intp[]){B, O}))) goto done;
    const int threads = threads_for(rung);
    Py_BEGIN_ALLOW_THREADS
    bias_rows(B, O, f32(b_O), f32(y_BO));  // then y += x @ w
    failed = gemm(rung, B, O, I, rows_of(x_BI, I), rows_of(w_IO, O), f32(y_BO), O, 1, threads);
    Py_END_ALLOW_THREADS
    if (failed) {
        Py_CLEAR(y_BO);
        PyErr_NoMemory();
    }
done:
    Py_XDECREF(x_BI);
    Py_XDECREF(w_IO);
    Py_XDECREF(b_O);
    return (PyObject*)y_BO;
}

static PyObject* py_linear_bwd(PyObject* self, PyObject* args)
{
    PyObject *x_obj, *w_obj, *dy_obj, *result = NULL;
    int rung, failed = 0;
    if (!PyArg_ParseTuple(args, "OOOi:linear_bwd", &x_obj, &w_obj, &dy_obj, &rung)
        || check_rung(rung)) return NULL;
    const char* op = "linear_bwd";
    PyArrayObject *x_BI = NULL, *w_IO = NULL, *dy_BO = NULL, *dx_BI = NULL, *dw_IO = NULL,
                  *db_O = NULL;
    if (!(x_BI = as_input(op, "x_BI", x_obj)) || !(w_IO = as_input(op, "w_IO", w_obj))
        || !(dy_BO = as_input(op, "dy_BO", dy_obj))
        || agree(op, "x_BI", x_BI, 1, "w_IO", w_IO, 0)
        || agree(op, "x_BI", x_BI, 0, "dy_BO", dy_BO, 0)
        || agree(op, "w_IO", w_IO, 1, "dy_BO", dy_BO, 1)) goto done;
    const npy_intp B = PyArray_DIM(x_BI, 0), I = PyArray_DIM(x_BI, 1), O = PyArray_DIM(w_IO, 1);
    if (!(dx_BI = new_f32(2, (npy_intp[]){B, I})) || !(dw_IO = new_f32(2, (npy_intp[]){I, O}))
        || !(db_O = new_f32(1, (npy_intp[]){O}))) goto done;
    const int threads = threads_for(rung);
    Py_BEGIN_ALLOW_THREADS
    // dx = dy @ w^T (contract over O); dw = x^T @ dy (contract over B); db = column sums of dy
    failed = gemm_pair(rung, (gemm_call){B, I, O, rows_of(dy_BO, O), transposed(w_IO, O),
                                         f32(dx_BI), I, 0},
                       (gemm_call){I, O, B, transposed(x_BI, I), rows_of(dy_BO, O), f32(dw_IO),
                                   O, 0}, threads);
    column_sums(B, O, f32(dy_BO), f32(db_O));
    Py_END_ALLOW_THREADS
    result = failed ? PyErr_NoMemory() : PyTuple_Pack(3, dx_BI, dw_IO, db_O);
done:
    Py_XDECREF(x_BI);
    Py_XDECREF(w_IO);
    Py_XDECREF(dy_BO);
    Py_XDECREF(dx_BI);
    Py_XDECREF(dw_IO);
    Py_XDECREF(db_O);
    return result;
}

// ---- elementwise and softmax ---------------------------------------------------------------

// Two same-shape inputs -> one new output of that shape: add and relu_bwd.
typedef void binary_kernel(ptrdiff_t n, const float* a, const float* b, float* c);

static PyObject* binary(const char* op, const char* name_a, const char* name_b, PyObject* args,
                        binary_kernel* kernel)
{
    PyObject *a_obj, *b_obj;
    if (!PyArg_ParseTuple(args, "OO", &a_obj, &b_obj)) return NULL;
    PyArrayObject *a = NULL, *b = NULL, *c = NULL;
    if (!(a = as_input(op, name_a, a_obj)) || !(b = as_input(op, name_b, b_obj))
        || same_shape(op, name_a, a, name_b, b)
        || !(c = new_f32(PyArray_NDIM(a), PyArray_DIMS(a)))) goto done;
    const npy_intp n = PyArray_SIZE(a);
    Py_BEGIN_ALLOW_THREADS
    kernel(n, f32(a), f32(b), f32(c));
    Py_END_ALLOW_THREADS
done:
    Py_XDECREF(a);
    Py_XDECREF(b);
    return (PyObject*)c;
}

static PyObject* py_add(PyObject* self, PyObject* args)
{
    return binary("add", "a_BI", "b_BI", args, add_f32);
}

static PyObject* py_relu_bwd(PyObject* self, PyObject* args)
{
    return binary("relu_bwd", "x_BI", "dy_BI", args, relu_bwd);
}

static PyObject* py_relu(PyObject* self, PyObject* args)
{
    PyObject* x_obj;
    if (!PyArg_ParseTuple(args, "O:relu", &x_obj)) return NULL;
    PyArrayObject *x_BI = NULL, *y_BI = NULL;
    if (!(x_BI = as_input("relu", "x_BI", x_obj))
        || !(y_BI = new_f32(2, PyArray_DIMS(x_BI)))) goto done;
    const npy_intp n = PyArray_SIZE(x_BI);
    Py_BEGIN_ALLOW_THREADS
    relu_fwd(n, f32(x_BI), f32(y_BI));
    Py_END_ALLOW_THREADS
done:
    Py_XDECREF(x_BI);
    return (PyObject*)y_BI;
}

static PyObject* py_softmax(PyObject* self, PyObject* args)
{
    PyObject* x_obj;
    int causal;
    double scale;
    if (!PyArg_ParseTuple(args, "Opd:softmax", &x_obj, &causal, &scale)) return NULL;
    PyArrayObject *x_XTS = NULL, *y_XTS = NULL;
    if (!(x_XTS = as_input("softmax", "x_XTS", x_obj))
        || !(y_XTS = new_f32(3, PyArray_DIMS(x_XTS)))) goto done;
    const npy_intp X = PyArray_DIM(x_XTS, 0), T = PyArray_DIM(x_XTS, 1), S = PyArray_DIM(x_XTS, 2);
    Py_BEGIN_ALLOW_THREADS
    softmax_fwd(X, T, S, f32(x_XTS), f32(y_XTS), causal, (float)scale);
    Py_END_ALLOW_THREADS
done:
    Py_XDECREF(x_XTS);
    return (PyObject*)y_XTS;
}

static PyObject* py_softmax_bwd(PyObject* self, PyObject* args)
{
    PyObject *y_obj, *dy_obj;
    double scale;
    if (!PyArg_ParseTuple(args, "OOd:softmax_bwd", &y_obj, &dy_obj, &scale)) return NULL;
    const char* op = "softmax_bwd";
    PyArrayObject *y_XTS = NULL, *dy_XTS = NULL, *dx_XTS = NULL;
    if (!(y_XTS = as_input(op, "y_XTS", y_obj)) || !(dy_XTS = as_input(op, "dy_XTS", dy_obj))
        || same_shape(op, "y_XTS", y_XTS, "dy_XTS", dy_XTS)
        || !(dx_XTS = new_f32(3, PyArray_DIMS(y_XTS)))) goto done;
    const npy_intp S = PyArray_DIM(y_XTS, 2), rows = S ? PyArray_SIZE(y_XTS) / S : 0;
    Py_BEGIN_ALLOW_THREADS
    softmax_bwd(rows, S, f32(y_XTS), f32(dy_XTS), f32(dx_XTS), (float)scale);
    Py_END_ALLOW_THREADS
done:
    Py_XDECREF(y_XTS);
    Py_XDECREF(dy_XTS);
    return (PyObject*)dx_XTS;
}

// Logits with at least one row and one class, and their labels: shared by xent fwd and bwd.
static int xent_args(const char* op, const char* name, PyObject* x_obj, PyObject* labels_obj,
                     PyArrayObject** x_BC, PyArrayObject** labels_B)
{
    if (!(*x_BC = as_input(op, name, x_obj))) return -1;
    if (PyArray_DIM(*x_BC, 0) == 0 || PyArray_DIM(*x_BC, 1) == 0) {
        fail_with_shape(PyExc_ValueError, op, name, "needs at least one row and one class, got "
                        "shape", *x_BC);
        return -1;
    }
    *labels_B = as_labels(op, "labels_B", labels_obj, PyArray_DIM(*x_BC, 0),
                          PyArray_DIM(*x_BC, 1));
    return *labels_B ? 0 : -1;
}

static PyObject* py_softmax_xent(PyObject* self, PyObject* args)
{
    PyObject *logits_obj, *labels_obj, *result = NULL;
    if (!PyArg_ParseTuple(args, "OO:softmax_xent", &logits_obj, &labels_obj)) return NULL;
    PyArrayObject *logits_BC = NULL, *labels_B = NULL, *probs_BC = NULL;
    if (xent_args("softmax_xent", "logits_BC", logits_obj, labels_obj, &logits_BC, &labels_B)
        || !(probs_BC = new_f32(2, PyArray_DIMS(logits_BC)))) goto done;
    const npy_intp B = PyArray_DIM(logits_BC, 0), C = PyArray_DIM(logits_BC, 1);
    double loss;
    Py_BEGIN_ALLOW_THREADS
    loss = softmax_xent_fwd(B, C, f32(logits_BC), PyArray_DATA(labels_B), f32(probs_BC)) / B;
    Py_END_ALLOW_THREADS
    result = Py_BuildValue("dO", loss, probs_BC);
done:
    Py_XDECREF(logits_BC);
    Py_XDECREF(labels_B);
    Py_XDECREF(probs_BC);
    return result;
}

static PyObject* py_softmax_xent_bwd(PyObject* self, PyObject* args)
{
    PyObject *probs_obj, *labels_obj;
    if (!PyArg_ParseTuple(args, "OO:softmax_xent_bwd", &probs_obj, &labels_obj)) return NULL;
    PyArrayObject *probs_BC = NULL, *labels_B = NULL, *dlogits_BC = NULL;
    if (xent_args("softmax_xent_bwd", "probs_BC", probs_obj, labels_obj, &probs_BC, &labels_B)
        || !(dlogits_BC = new_f32(2, PyArray_DIMS(probs_BC)))) goto done;
    const npy_intp B = PyArray_DIM(probs_BC, 0), C = PyArray_DIM(probs_BC, 1);
    Py_BEGIN_ALLOW_THREADS
    softmax_xent_bwd(B, C, f32(probs_BC), PyArray_DATA(labels_B), f32(dlogits_BC), 1.0f / B);
    Py_END_ALLOW_THREADS
done:
    Py_XDECREF(probs_BC);
    Py_XDECREF(labels_B);
    return (PyObject*)dlogits_BC;
}

// ---- optimizer updates, in place ------------------------------------------------------------

/* p and its state (`names`, first p then the in-place state, then g last) checked and matched
 * to p's shape. arrays[] gets new references; -1 with an error (what was set is released). */
static int optimizer_args(const char* op, int n, const char* const* names, PyObject** objs,
                          PyArrayObject** arrays)
{
    for (int i = 0; i < n; i++) arrays[i] = NULL;
    for (int i = 0; i < n; i++) {
        const int in_place = strcmp(names[i], "g") != 0;
        arrays[i] = in_place ? as_inout(op, names[i], objs[i]) : as_input(op, names[i], objs[i]);
        if (!arrays[i] || (i > 0 && same_shape(op, names[0], arrays[0], names[i], arrays[i]))) {
            for (int j = 0; j <= i; j++) Py_XDECREF(arrays[j]);
            return -1;
        }
    }
    return 0;
}

static PyObject* py_sgd(PyObject* self, PyObject* args)
{
    static const char* const names[] = {"p", "g"};
    PyObject* objs[2];
    PyArrayObject* arr[2];
    double lr;
    int rung;
    if (!PyArg_ParseTuple(args, "OOdi:sgd", &objs[0], &objs[1], &lr, &rung) || check_rung(rung)
        || optimizer_args("sgd", 2, names, objs, arr)) return NULL;
    const npy_intp n = PyArray_SIZE(arr[0]);
    const int threads = threads_for(rung);
    Py_BEGIN_ALLOW_THREADS
    sgd_update(n, f32(arr[0]), f32(arr[1]), (float)lr, threads);
    Py_END_ALLOW_THREADS
    Py_DECREF(arr[0]);
    Py_DECREF(arr[1]);
    Py_RETURN_NONE;
}

static PyObject* py_momentum(PyObject* self, PyObject* args)
{
    static const char* const names[] = {"p", "v", "g"};
    PyObject* objs[3];
    PyArrayObject* arr[3];
    double lr, mu;
    int rung;
    if (!PyArg_ParseTuple(args, "OOOddi:momentum", &objs[0], &objs[2], &objs[1], &lr, &mu, &rung)
        || check_rung(rung) || optimizer_args("momentum", 3, names, objs, arr)) return NULL;
    const npy_intp n = PyArray_SIZE(arr[0]);
    const int threads = threads_for(rung);
    Py_BEGIN_ALLOW_THREADS
    momentum_update(n, f32(arr[0]), f32(arr[2]), f32(arr[1]), (float)lr, (float)mu, threads);
    Py_END_ALLOW_THREADS
    for (int i = 0; i < 3; i++) Py_DECREF(arr[i]);
    Py_RETURN_NONE;
}

static PyObject* py_adam(PyObject* self, PyObject* args)
{
    static const char* const names[] = {"p", "m", "v", "g"};
    PyObject* objs[4];
    PyArrayObject* arr[4];
    long t;
    double lr, beta1, beta2, eps;
    int rung;
    if (!PyArg_ParseTuple(args, "OOOOlddddi:adam", &objs[0], &objs[3], &objs[1], &objs[2], &t,
                          &lr, &beta1, &beta2, &eps, &rung) || check_rung(rung)) return NULL;
    if (t < 1) {
        PyErr_Format(PyExc_ValueError, "adam: t counts steps from 1, got %ld", t);
        return NULL;
    }
    if (optimizer_args("adam", 4, names, objs, arr)) return NULL;
    const npy_intp n = PyArray_SIZE(arr[0]);
    const int threads = threads_for(rung);
    Py_BEGIN_ALLOW_THREADS
    adam_update(n, f32(arr[0]), f32(arr[3]), f32(arr[1]), f32(arr[2]), t, lr, beta1, beta2, eps,
                threads);
    Py_END_ALLOW_THREADS
    for (int i = 0; i < 4; i++) Py_DECREF(arr[i]);
    Py_RETURN_NONE;
}

// ---- the MLP model, fused (mlp.c) -----------------------------------------------------------

/* An MLP's parameters [w0_IO, b0_O, w1_IO, b1_O, ...] checked against its input x_BI: a list or
 * tuple of (w, b) pairs whose widths chain, starting from x_BI's features. */
typedef struct {
    int L;                 // layers
    PyArrayObject** wb;    // 2L new references: w0_IO, b0_O, w1_IO, b1_O, ...
    ptrdiff_t* width;      // L + 1: x's features, then each layer's outputs
    const float** w;       // L pointers into wb
    const float** b;       // L pointers into wb
} mlp_params;

static void mlp_params_free(mlp_params* p)
{
    for (int i = 0; p->wb && i < 2 * p->L; i++) Py_XDECREF(p->wb[i]);
    PyMem_Free(p->wb);
    PyMem_Free(p->width);
    PyMem_Free(p->w);
    PyMem_Free(p->b);
}

static int mlp_params_check(const char* op, PyObject* obj, PyArrayObject* x_BI, mlp_params* p)
{
    *p = (mlp_params){0};
    if (!PyList_Check(obj) && !PyTuple_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s: params must be a list [w0_IO, b0_O, w1_IO, b1_O, "
                     "...], got %s", op, Py_TYPE(obj)->tp_name);
        return -1;
    }
    const Py_ssize_t n = PySequence_Fast_GET_SIZE(obj);
    if (n < 2 || n % 2 || n > 2 * 4096) {
        PyErr_Format(PyExc_ValueError, "%s: params must hold one (w_IO, b_O) pair per layer, "
                     "got %zd arrays", op, n);
        return -1;
    }
    p->L = (int)(n / 2);
    p->wb = PyMem_Calloc(n, sizeof *p->wb);
    p->width = PyMem_Calloc(p->L + 1, sizeof *p->width);
    p->w = PyMem_Calloc(p->L, sizeof *p->w);
    p->b = PyMem_Calloc(p->L, sizeof *p->b);
    if (!p->wb || !p->width || !p->w || !p->b) {
        PyErr_NoMemory();
        return -1;
    }
    p->width[0] = PyArray_DIM(x_BI, 1);
    for (int l = 0; l < p->L; l++) {
        char w_name[32], b_name[32], prev_name[32];
        snprintf(w_name, sizeof w_name, "w%d_IO", l);
        snprintf(b_name, sizeof b_name, "b%d_O", l);
        snprintf(prev_name, sizeof prev_name, "w%d_IO", l - 1);
        PyArrayObject *w_IO, *b_O;
        if (!(w_IO = p->wb[2 * l] = as_input(op, w_name, PySequence_Fast_GET_ITEM(obj, 2 * l)))
            || !(b_O = p->wb[2 * l + 1] =
                     as_input(op, b_name, PySequence_Fast_GET_ITEM(obj, 2 * l + 1)))
            || (l == 0 ? agree(op, "x_BI", x_BI, 1, w_name, w_IO, 0)
                       : agree(op, prev_name, p->wb[2 * l - 2], 1, w_name, w_IO, 0))
            || agree(op, w_name, w_IO, 1, b_name, b_O, 0)) return -1;
        p->width[l + 1] = PyArray_DIM(w_IO, 1);
        p->w[l] = f32(w_IO);
        p->b[l] = f32(b_O);
    }
    return 0;
}

// 0 when arr has shape (rows, cols); else -1 with a ValueError naming it.
static int has_shape(const char* op, const char* name, PyArrayObject* arr, npy_intp rows,
                     npy_intp cols)
{
    if (PyArray_DIM(arr, 0) == rows && PyArray_DIM(arr, 1) == cols) return 0;
    char what[96];
    snprintf(what, sizeof what, "must have shape (%zd, %zd) to match x_BI and params, got",
             (Py_ssize_t)rows, (Py_ssize_t)cols);
    fail_with_shape(PyExc_ValueError, op, name, what, arr);
    return -1;
}

static PyObject* py_mlp_forward(PyObject* self, PyObject* args)
{
    PyObject *params_obj, *x_obj, *labels_obj, *result = NULL, *h_tuple = NULL;
    int rung, failed = 0;
    if (!PyArg_ParseTuple(args, "OOOi:mlp_forward", &params_obj, &x_obj, &labels_obj, &rung)
        || check_rung(rung)) return NULL;
    const char* op = "mlp_forward";
    mlp_params p = {0};
    PyArrayObject *x_BI = NULL, *labels_B = NULL, *probs_BC = NULL;
    float** h = NULL;
    if (!(x_BI = as_input(op, "x_BI", x_obj)) || mlp_params_check(op, params_obj, x_BI, &p))
        goto done;
    const npy_intp B = PyArray_DIM(x_BI, 0), C = p.width[p.L];
    if (B == 0 || C == 0) {
        fail_with_shape(PyExc_ValueError, op, "x_BI", "needs at least one row, and the last "
                        "layer at least one class; got x_BI of shape", x_BI);
        goto done;
    }
    if (!(labels_B = as_labels(op, "labels_B", labels_obj, B, C))
        || !(probs_BC = new_f32(2, (npy_intp[]){B, C}))
        || !(h_tuple = PyTuple_New(p.L - 1))) goto done;
    if (!(h = PyMem_Calloc(p.L, sizeof *h))) {
        PyErr_NoMemory();
        goto done;
    }
    for (int l = 0; l < p.L - 1; l++) {  // the hidden layers' relu outputs: the backward's cache
        PyArrayObject* h_BO = new_f32(2, (npy_intp[]){B, p.width[l + 1]});
        if (!h_BO) goto done;
        PyTuple_SET_ITEM(h_tuple, l, (PyObject*)h_BO);
        h[l] = f32(h_BO);
    }
    double loss = 0.0;
    const int threads = threads_for(rung);
    Py_BEGIN_ALLOW_THREADS
    failed = mlp_fwd(rung, threads, B, p.L, p.width, p.w, p.b, f32(x_BI), h,
                     PyArray_DATA(labels_B), f32(probs_BC), &loss);
    Py_END_ALLOW_THREADS
    result = failed ? PyErr_NoMemory() : Py_BuildValue("dOO", loss, probs_BC, h_tuple);
done:
    mlp_params_free(&p);
    PyMem_Free(h);
    Py_XDECREF(x_BI);
    Py_XDECREF(labels_B);
    Py_XDECREF(probs_BC);
    Py_XDECREF(h_tuple);
    return result;
}

static PyObject* py_mlp_backward(PyObject* self, PyObject* args)
{
    PyObject *params_obj, *x_obj, *h_obj, *probs_obj, *labels_obj, *grads = NULL;
    int rung, failed = 0;
    if (!PyArg_ParseTuple(args, "OOOOOi:mlp_backward", &params_obj, &x_obj, &h_obj, &probs_obj,
                          &labels_obj, &rung) || check_rung(rung)) return NULL;
    const char* op = "mlp_backward";
    mlp_params p = {0};
    PyArrayObject *x_BI = NULL, *probs_BC = NULL, *labels_B = NULL, **h_arrays = NULL;
    const float** h = NULL;
    float **dw = NULL, **db = NULL;
    if (!(x_BI = as_input(op, "x_BI", x_obj)) || mlp_params_check(op, params_obj, x_BI, &p)
        || !(probs_BC = as_input(op, "probs_BC", probs_obj))) goto done;
    const npy_intp B = PyArray_DIM(x_BI, 0), C = p.width[p.L];
    if (has_shape(op, "probs_BC", probs_BC, B, C) || B == 0 || C == 0
        || !(labels_B = as_labels(op, "labels_B", labels_obj, B, C))) {
        if (!PyErr_Occurred()) {
            fail_with_shape(PyExc_ValueError, op, "probs_BC", "needs at least one row and one "
                            "class, got shape", probs_BC);
        }
        goto done;
    }
    if (!PyTuple_Check(h_obj) || PyTuple_GET_SIZE(h_obj) != p.L - 1) {
        PyErr_Format(PyExc_ValueError, "%s: h must be the tuple of %d hidden outputs that "
                     "mlp_forward returned, got %R", op, p.L - 1, h_obj);
        goto done;
    }
    h_arrays = PyMem_Calloc(p.L, sizeof *h_arrays);
    h = PyMem_Calloc(p.L, sizeof *h);
    dw = PyMem_Calloc(p.L, sizeof *dw);
    db = PyMem_Calloc(p.L, sizeof *db);
    if (!h_arrays || !h || !dw || !db || !(grads = PyList_New(2 * p.L))) {
        if (!PyErr_Occurred()) PyErr_NoMemory();
        goto done;
    }
    for (int l = 0; l < p.L - 1; l++) {
        char name[32];
        snprintf(name, sizeof name, "h%d_BO", l);
        if (!(h_arrays[l] = as_input(op, name, PyTuple_GET_ITEM(h_obj, l)))
            || has_shape(op, name, h_arrays[l], B, p.width[l + 1])) goto fail;
        h[l] = f32(h_arrays[l]);
    }
    for (int l = 0; l < p.L; l++) {
        PyArrayObject *dw_IO = new_f32(2, (npy_intp[]){p.width[l], p.width[l + 1]}),
                      *db_O = new_f32(1, (npy_intp[]){p.width[l + 1]});
        if (dw_IO) PyList_SET_ITEM(grads, 2 * l, (PyObject*)dw_IO);
        if (db_O) PyList_SET_ITEM(grads, 2 * l + 1, (PyObject*)db_O);
        if (!dw_IO || !db_O) goto fail;
        dw[l] = f32(dw_IO);
        db[l] = f32(db_O);
    }
    const int threads = threads_for(rung);
    Py_BEGIN_ALLOW_THREADS
    failed = mlp_bwd(rung, threads, B, p.L, p.width, p.w, f32(x_BI), h, f32(probs_BC),
                     PyArray_DATA(labels_B), dw, db);
    Py_END_ALLOW_THREADS
    if (!failed) goto done;
    PyErr_NoMemory();
fail:
    Py_CLEAR(grads);
done:
    for (int l = 0; h_arrays && l < p.L - 1; l++) Py_XDECREF(h_arrays[l]);
    mlp_params_free(&p);
    PyMem_Free(h_arrays);
    PyMem_Free((void*)h);
    PyMem_Free(dw);
    PyMem_Free(db);
    Py_XDECREF(x_BI);
    Py_XDECREF(probs_BC);
    Py_XDECREF(labels_B);
    return grads;
}

// ---- configuration --------------------------------------------------------------------------

static PyObject* py_threads(PyObject* self, PyObject* args)
{
    return PyLong_FromLong(gemm_max_threads());
}

static PyObject* py_kernel(PyObject* self, PyObject* args)
{
    return PyUnicode_FromString(gemm_kernel());
}

static PyObject* py_set_kernel(PyObject* self, PyObject* args)
{
    const char* name;
    if (!PyArg_ParseTuple(args, "s:set_kernel", &name)) return NULL;
    if (gemm_set_kernel(name)) {
        PyErr_Format(PyExc_ValueError, "set_kernel: name must be 'auto', 'scalar' or 'avx2' "
                     "('avx2' only on a CPU with AVX2 and FMA), got '%s'", name);
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"matmul", py_matmul, METH_VARARGS, "matmul(a_MK, b_KN, rung) -> c_MN"},
    {"matmul_bwd", py_matmul_bwd, METH_VARARGS, "matmul_bwd(a_MK, b_KN, dc_MN, rung) -> (da, db)"},
    {"bmm", py_bmm, METH_VARARGS, "bmm(a_XMK, b_XKN, rung) -> c_XMN"},
    {"bmm_bwd", py_bmm_bwd, METH_VARARGS, "bmm_bwd(a_XMK, b_XKN, dc_XMN, rung) -> (da, db)"},
    {"linear", py_linear, METH_VARARGS, "linear(x_BI, w_IO, b_O, rung) -> y_BO"},
    {"linear_bwd", py_linear_bwd, METH_VARARGS,
     "linear_bwd(x_BI, w_IO, dy_BO, rung) -> (dx_BI, dw_IO, db_O)"},
    {"add", py_add, METH_VARARGS, "add(a_BI, b_BI) -> c_BI"},
    {"relu", py_relu, METH_VARARGS, "relu(x_BI) -> y_BI"},
    {"relu_bwd", py_relu_bwd, METH_VARARGS, "relu_bwd(x_BI, dy_BI) -> dx_BI"},
    {"softmax", py_softmax, METH_VARARGS, "softmax(x_XTS, causal, scale) -> y_XTS"},
    {"softmax_bwd", py_softmax_bwd, METH_VARARGS, "softmax_bwd(y_XTS, dy_XTS, scale) -> dx_XTS"},
    {"softmax_xent", py_softmax_xent, METH_VARARGS,
     "softmax_xent(logits_BC, labels_B) -> (loss, probs_BC)"},
    {"softmax_xent_bwd", py_softmax_xent_bwd, METH_VARARGS,
     "softmax_xent_bwd(probs_BC, labels_B) -> dlogits_BC"},
    {"sgd", py_sgd, METH_VARARGS,
     "sgd(p, g, lr, rung): p -= lr * g, in place (split between threads on rung 4)"},
    {"momentum", py_momentum, METH_VARARGS, "momentum(p, g, v, lr, mu, rung), in place"},
    {"adam", py_adam, METH_VARARGS, "adam(p, g, m, v, t, lr, beta1, beta2, eps, rung), in place"},
    {"mlp_forward", py_mlp_forward, METH_VARARGS,
     "mlp_forward(params, x_BI, labels_B, rung) -> (loss, probs_BC, h): the MLP's forward and "
     "loss; h, the hidden layers' relu outputs, is what mlp_backward needs"},
    {"mlp_backward", py_mlp_backward, METH_VARARGS,
     "mlp_backward(params, x_BI, h, probs_BC, labels_B, rung) -> [dw0_IO, db0_O, ...]"},
    {"threads", py_threads, METH_NOARGS, "threads() -> the team size rung 4 uses now"},
    {"kernel", py_kernel, METH_NOARGS, "kernel() -> the GEMM micro-kernel in use"},
    {"set_kernel", py_set_kernel, METH_VARARGS,
     "set_kernel(name): 'auto' (the best this CPU runs), 'avx2' or 'scalar'"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "nnladder_c", "The C rung's kernels (kernels/c).", -1, methods,
};

PyMODINIT_FUNC PyInit_nnladder_c(void)
{
    import_array();
    gemm_set_kernel("auto");
    return PyModule_Create(&module);
}
