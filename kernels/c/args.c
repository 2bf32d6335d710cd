/* An op's arguments checked against its shape-suffix spec (args.h) before a kernel sees them,
 * as harness/contract.py's check_shapes does: ndarray and float32 (else TypeError), the axes the
 * suffix spells and sizes that agree wherever two names share a letter (else ValueError naming
 * both arrays, shapes and the letter); labels integer, one per row, each a class index. */
#include "args.h"

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
int agree(const char* op, const char* name_a, PyArrayObject* a, int i, const char* name_b,
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

// Every axis of a against the same axis of b: arrays without a suffix (optimizer state).
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

// Labels as contiguous int64, B of them, each in [0, C): one past C would index off its row.
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

int check_rung(int rung)
{
    if (rung >= GEMM_NAIVE && rung <= GEMM_THREADS) return 0;
    PyErr_Format(PyExc_ValueError, "rung must be 1 (naive), 2 (loops), 3 (blocked) or "
                 "4 (threads), got %d", rung);
    return -1;
}

// ---- the spec -------------------------------------------------------------------------------

// A spec is a constant of its wrapper, so a bad one is a bug in this module, never the caller's.
static int spec_bug(const op_args* a, const char* what)
{
    PyErr_Format(PyExc_SystemError, "%s: bad argument spec: %s", a->op, what);
    return -1;
}

// The spec's names and markers into a, and its counts.
static int read_spec(op_args* a, const char* spec)
{
    a->inputs = -1;
    for (const char* s = spec; *s; s += strspn(s, " ")) {
        const size_t len = strcspn(s, " ");
        const int i = a->count;
        if (len == 2 && !strncmp(s, "->", 2)) a->inputs = i;
        else if (i == ARGS_MAX || len >= sizeof a->name[0]) return spec_bug(a, "too long");
        else {
            char* name = a->name[a->count++];
            for (size_t j = 0; j < len; j++) {
                if (s[j] == '!') a->in_place[i] = 1;
                else if (s[j] == '<' && j + 1 < len) a->classes[i] = s[++j];
                else *name++ = s[j];
            }
            *name = '\0';
            for (const char* l = suffix(a->name[i]); *l; l++) {  // size[] has slots for A-Z
                if (*l < 'A' || *l > 'Z') return spec_bug(a, "an axis letter outside A-Z");
            }
        }
        s += len;
    }
    if (a->inputs < 0) a->inputs = a->count;
    return 0;
}

/* Array i's axis sizes against the arrays' before it: a letter seen before must have the size
 * it had then. An array without a suffix must have the shape of the first one (*any). */
static int sizes_of(op_args* a, int i, int* any)
{
    const char* letters = suffix(a->name[i]);
    if (!*letters) {
        if (*any < 0) *any = i;
        return *any == i ? 0 : same_shape(a->op, a->name[*any], a->arr[*any], a->name[i],
                                          a->arr[i]);
    }
    for (int axis = 0; letters[axis]; axis++) {
        const int letter = letters[axis], j = a->first[letter];
        if (j < 0) {
            a->first[letter] = (signed char)i;
            a->first_axis[letter] = (signed char)axis;
            a->size[letter] = PyArray_DIM(a->arr[i], axis);
        } else if (agree(a->op, a->name[j], a->arr[j], a->first_axis[letter], a->name[i],
                         a->arr[i], axis)) {
            return -1;
        }
    }
    return 0;
}

/* Labels i: one per row (their letter), each indexing its classes. With no row or no class there
 * is nothing to index or to average over, said of the array that gave the classes. */
static int take_labels(op_args* a, int i, PyObject* obj)
{
    const int rows = suffix(a->name[i])[0], classes = a->classes[i];
    if (classes < 'A' || classes > 'Z' || a->first[classes] < 0 || a->first[rows] < 0) {
        return spec_bug(a, "labels need a row and a class letter sized before them");
    }
    const int owner = a->first[classes];
    if (a->size[rows] == 0 || a->size[classes] == 0) {
        fail_with_shape(PyExc_ValueError, a->op, a->name[owner], "needs at least one row and "
                        "one class, got shape", a->arr[owner]);
        return -1;
    }
    a->arr[i] = as_labels(a->op, a->name[i], obj, a->size[rows], a->size[classes]);
    return a->arr[i] ? 0 : -1;
}

int args_parse(op_args* a, const char* op, const char* spec, PyObject* const* objs,
               const int* rung)
{
    memset(a, 0, sizeof *a);
    memset(a->first, -1, sizeof a->first);
    memset(a->size, -1, sizeof a->size);  // all bits set: -1
    a->op = op;
    if ((rung && check_rung(*rung)) || read_spec(a, spec)) return -1;
    a->threads = rung ? threads_for(*rung) : 1;
    // Every float array first, so a wrong type or rank is reported before a size disagreement.
    for (int i = 0; i < a->inputs; i++) {
        if (a->classes[i]) continue;
        a->arr[i] = (a->in_place[i] ? as_inout : as_input)(op, a->name[i], objs[i]);
        if (!a->arr[i]) goto fail;
    }
    int any = -1;
    for (int i = 0; i < a->inputs; i++) {
        if (a->classes[i] ? take_labels(a, i, objs[i]) : sizes_of(a, i, &any)) goto fail;
    }
    for (int i = a->inputs; i < a->count; i++) {
        const char* letters = suffix(a->name[i]);
        npy_intp dims[NPY_MAXDIMS];
        const int ndim = (int)strlen(letters);
        // (a letter no input sized is -1, which NumPy refuses: a bad spec cannot go unseen)
        for (int k = 0; k < ndim; k++) dims[k] = a->size[(int)letters[k]];
        if (!(a->arr[i] = new_f32(ndim, dims))) goto fail;
    }
    return 0;
fail:
    args_release(a);
    return -1;
}

void args_release(op_args* a)
{
    for (int i = 0; i < ARGS_MAX; i++) Py_CLEAR(a->arr[i]);
}

PyObject* args_return(op_args* a, int failed)
{
    const int outputs = a->count - a->inputs;
    PyObject* result = outputs == 0 ? Py_None : (PyObject*)a->arr[a->inputs];
    if (failed) result = PyErr_NoMemory();
    else if (outputs <= 1) Py_INCREF(result);  // None or the one output, as a new reference
    else if ((result = PyTuple_New(outputs))) {
        for (int k = 0; k < outputs; k++) {
            Py_INCREF(a->arr[a->inputs + k]);
            PyTuple_SET_ITEM(result, k, (PyObject*)a->arr[a->inputs + k]);
        }
    }
    args_release(a);
    return result;
}
