/* An op's arguments checked against its shape-suffix spec (args.h) before a kernel sees them,
 * as harness/contract.py's check_shapes does: each array as args_arrays.c takes it (ndarray,
 * float32, the axes its suffix spells), then sizes that agree wherever two names share a letter
 * (else ValueError naming both arrays, shapes and the letter); labels integer, one per row,
 * each an index into its axis. Then the outputs, allocated from the sizes the letters got. */
#include "args.h"

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
            for (const char* l = suffix(a->name[i]); *l && !any_shape(a->name[i]); l++) {
                if (*l < 'A' || *l > 'Z') return spec_bug(a, "an axis letter outside A-Z");
            }  // (size[] has slots for A-Z)
        }
        s += len;
    }
    if (a->inputs < 0) a->inputs = a->count;
    return 0;
}

/* Array i's axis sizes against the arrays' before it: a letter seen before must have the size
 * it had then. An any-shape array must have the shape of the first one (a->any). */
static int sizes_of(op_args* a, int i)
{
    const char* letters = suffix(a->name[i]);
    if (any_shape(a->name[i])) {
        if (a->any < 0) a->any = (signed char)i;
        return a->any == i ? 0 : same_shape(a->op, a->name[a->any], a->arr[a->any], a->name[i],
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
 * is nothing to index or to average over, said of the array that gave the classes. Labels that
 * are the first to have their rows letter (an embedding's tokens_R) size it instead. */
static int take_labels(op_args* a, int i, PyObject* obj)
{
    const int rows = suffix(a->name[i])[0], classes = a->classes[i];
    if (classes < 'A' || classes > 'Z' || a->first[classes] < 0 || rows < 'A' || rows > 'Z') {
        return spec_bug(a, "labels need a row letter and a class letter sized before them");
    }
    const int owner = a->first[classes], counted = a->first[rows] >= 0;
    if (counted && (a->size[rows] == 0 || a->size[classes] == 0)) {
        fail_with_shape(PyExc_ValueError, a->op, a->name[owner], "needs at least one row and "
                        "one class, got shape", a->arr[owner]);
        return -1;
    }
    if (a->size[classes] == 0) {
        char what[64];
        snprintf(what, sizeof what, "has no %c entries for %s to index, got shape", classes,
                 a->name[i]);
        fail_with_shape(PyExc_ValueError, a->op, a->name[owner], what, a->arr[owner]);
        return -1;
    }
    a->arr[i] = as_labels(a->op, a->name[i], obj, counted ? a->size[rows] : -1, a->size[classes]);
    if (!a->arr[i]) return -1;
    if (!counted) {
        a->first[rows] = (signed char)i;
        a->first_axis[rows] = 0;
        a->size[rows] = PyArray_DIM(a->arr[i], 0);
    }
    return 0;
}

int args_take(op_args* a, const char* op, const char* spec, PyObject* const* objs,
              const int* rung)
{
    memset(a, 0, sizeof *a);
    memset(a->first, -1, sizeof a->first);
    memset(a->size, -1, sizeof a->size);  // all bits set: -1
    a->op = op;
    a->any = -1;
    if ((rung && check_rung(*rung)) || read_spec(a, spec)) return -1;
    a->threads = rung ? threads_for(*rung) : 1;
    // Every float array first, so a wrong type or rank is reported before a size disagreement.
    for (int i = 0; i < a->inputs; i++) {
        if (a->classes[i]) continue;
        a->arr[i] = (a->in_place[i] ? as_inout : as_input)(op, a->name[i], objs[i]);
        if (!a->arr[i]) goto fail;
    }
    for (int i = 0; i < a->inputs; i++) {
        if (a->classes[i] ? take_labels(a, i, objs[i]) : sizes_of(a, i)) goto fail;
    }
    return 0;
fail:
    args_release(a);
    return -1;
}

int args_alloc(op_args* a)
{
    for (int i = a->inputs; i < a->count; i++) {
        const char* letters = suffix(a->name[i]);
        npy_intp dims[NPY_MAXDIMS];
        int ndim = (int)strlen(letters);
        if (!any_shape(a->name[i])) {
            // (a letter no input sized is -1, which NumPy refuses: a bad spec cannot go unseen)
            for (int k = 0; k < ndim; k++) dims[k] = a->size[(int)letters[k]];
        } else if (a->any >= 0) {  // the shape of the any-shape inputs
            ndim = PyArray_NDIM(a->arr[a->any]);
            memcpy(dims, PyArray_DIMS(a->arr[a->any]), ndim * sizeof *dims);
        } else {
            spec_bug(a, "an any-shape output needs an any-shape input");
            goto fail;
        }
        if (!(a->arr[i] = new_f32(ndim, dims))) goto fail;
    }
    return 0;
fail:
    args_release(a);
    return -1;
}

int args_parse(op_args* a, const char* op, const char* spec, PyObject* const* objs,
               const int* rung)
{
    return args_take(a, op, spec, objs, rung) || args_alloc(a) ? -1 : 0;
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
