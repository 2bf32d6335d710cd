/* The Python side of the C rung: the argument checks that every wrapper uses (args.c reads an
 * op's spec, args_arrays.c checks one array at a time), in module.c (the module, products,
 * configuration), module_ops.c (softmax, cross-entropy, updates), module_nn.c (the elementwise
 * ops, layernorm, embedding), module_conv.c (conv and pool) and module_mlp.c (the fused
 * model). The kernels (nnladder.h) never see Python; all of this does.
 */
#ifndef NNLADDER_ARGS_H
#define NNLADDER_ARGS_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
/* NumPy's C API is a table of pointers that import_array() fills in. Each file would get its
 * own empty copy; this names one for the whole module, filled by module.c's PyInit. */
#define PY_ARRAY_UNIQUE_SYMBOL nnladder_c_ARRAY_API
#ifndef NNLADDER_IMPORT_ARRAY
#define NO_IMPORT_ARRAY
#endif
#include <numpy/arrayobject.h>

#include "nnladder.h"

#undef I  // complex.h's imaginary unit, via NumPy: here I is the contract's input-features letter

#define ARGS_MAX 8  // the most arrays one op takes and returns together (linear_bwd: 3 + 3)

/* One op's arrays, checked against a spec of shape-suffixed names, as harness/contract.py's
 * check_shapes checks them. The spec lists the inputs in the order their objects are passed,
 * then "->" and the outputs to allocate:
 *
 *   "a_MK b_KN -> c_MN"          float32 inputs; axes from the suffix; letters agree by name
 *   "x_* dy_* -> dx_*"           ANY_SHAPE, the contract's "*": any shape of one axis or more,
 *                                one for every such array; an output "*" is allocated in it
 *   "p! v! g"                    no suffix: any shape, () too, but the first one's; "!": in place
 *   "logits_BC labels_B<C -> probs_BC"   integer class labels, one per B, each in [0, C)
 *   "w_VD tokens_R<V -> x_RD"    labels that are the first with their rows letter size it
 *
 * Inputs that are not C-contiguous, aligned and native-endian are copied; an in-place array
 * ("!") cannot be, so it is refused then, and when it is read-only. Labels are taken as int64,
 * after the float arrays (their range needs C), and need at least one class (and one row when
 * a float array sized their rows). */
#define ANY_SHAPE "*"
typedef struct {
    const char* op;
    int inputs, count;             // arr[0 .. inputs) are the inputs, the outputs follow
    int threads;                   // the team size for the op's GEMM rung
    PyArrayObject* arr[ARGS_MAX];  // spec order, new references (int64 labels, else float32)
    npy_intp size['Z' + 1];        // sizes by letter, as check_shapes returns: size['K']
    signed char first['Z' + 1];    // the first array with each letter; -1 (size -1) for none
    signed char first_axis['Z' + 1];  // ... and its axis with the letter
    char name[ARGS_MAX][24];       // the spec's names without their markers, for messages
    char in_place[ARGS_MAX];       // 1 for "p!"
    char classes[ARGS_MAX];        // 'C' for "labels_B<C"; 0 for a float32 array
    signed char any;               // the first any-shape input, whose shape "*" outputs take
} op_args;

/* objs: the inputs' objects in spec order. rung: the op's GEMM rung, checked and setting
 * threads; NULL for an op without one. -> 0, or -1 with an error and nothing held. */
int args_parse(op_args* a, const char* op, const char* spec, PyObject* const* objs,
               const int* rung);
/* args_parse in its two steps, for an op whose outputs have letters that no input sizes (a
 * conv's U and W, from its window: module_conv.c): args_take checks the inputs, the caller
 * sets a->size of those letters, args_alloc allocates the outputs. Each -> 0, or -1 with an
 * error and nothing held. */
int args_take(op_args* a, const char* op, const char* spec, PyObject* const* objs,
              const int* rung);
int args_alloc(op_args* a);
/* Releases every array, and is safe to call twice: args_return calls it, and so does a wrapper
 * that builds its own result (softmax_xent's (loss, probs_BC)). */
void args_release(op_args* a);
/* A wrapper's return: None, its one output or a tuple of its outputs; MemoryError when the
 * kernel ran out of memory (failed). Releases a either way. */
PyObject* args_return(op_args* a, int failed);

/* The pieces args_parse is made of (args_arrays.c), for the wrappers that check by hand: the
 * MLP's list of parameters (module_mlp.c), a conv's windows (module_conv.c). */
const char* suffix(const char* name);  // "a_MK" -> "MK"; "" for a name without one
int any_shape(const char* name);       // no suffix, or ANY_SHAPE
PyObject* shape_text(PyArrayObject* arr);  // "(3, 4)", "(5,)": a shape as NumPy prints it
PyArrayObject* as_input(const char* op, const char* name, PyObject* obj);
PyArrayObject* as_inout(const char* op, const char* name, PyObject* obj);
int agree(const char* op, const char* name_a, PyArrayObject* a, int i, const char* name_b,
          PyArrayObject* b, int j);
int same_shape(const char* op, const char* name_a, PyArrayObject* a, const char* name_b,
               PyArrayObject* b);
PyArrayObject* as_labels(const char* op, const char* name, PyObject* obj, npy_intp B,
                         npy_intp C);
void fail_with_shape(PyObject* type, const char* op, const char* name, const char* what,
                     PyArrayObject* arr);
int check_rung(int rung);

static inline PyArrayObject* new_f32(int ndim, const npy_intp* dims)
{
    return (PyArrayObject*)PyArray_SimpleNew(ndim, (npy_intp*)dims, NPY_FLOAT32);
}

static inline float* f32(PyArrayObject* arr) { return (float*)PyArray_DATA(arr); }

// Row-major views of a 2-d or per-batch (rows, cols) matrix, as is and transposed.
static inline view rows_of(PyArrayObject* arr, npy_intp cols) { return (view){f32(arr), cols, 1}; }
static inline view transposed(PyArrayObject* arr, npy_intp cols)
{
    return (view){f32(arr), 1, cols};
}

static inline int threads_for(int rung) { return rung == GEMM_THREADS ? gemm_max_threads() : 1; }

// The functions of the other module_*.c files, which module.c's PyInit adds to the module.
extern PyMethodDef ops_methods[], nn_methods[], conv_methods[], mlp_methods[];

#endif
