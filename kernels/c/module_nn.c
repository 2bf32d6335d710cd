/* nnladder_c's wrappers of the elementwise ops (ops.c's add and relu, nn.c's gelu, sigmoid,
 * tanh, mse), layernorm, transpose and the embedding, each parsed and checked by its spec
 * (args.h). The elementwise ops take any shape, the contract's `x_*`: one for all their arrays.
 */
#include "args.h"

typedef void unary_fn(ptrdiff_t n, const float* x, float* y);
typedef void binary_fn(ptrdiff_t n, const float* a, const float* b, float* c);

// One input -> one new output of its shape.
static PyObject* unary(const char* op, const char* spec, PyObject* args, unary_fn kernel)
{
    PyObject* objs[1];
    op_args arg;
    if (!PyArg_UnpackTuple(args, op, 1, 1, &objs[0]) || args_parse(&arg, op, spec, objs, NULL)) {
        return NULL;
    }
    const npy_intp n = PyArray_SIZE(arg.arr[0]);
    Py_BEGIN_ALLOW_THREADS
    kernel(n, f32(arg.arr[0]), f32(arg.arr[1]));
    Py_END_ALLOW_THREADS
    return args_return(&arg, 0);
}

// Two same-shape inputs -> one new output of that shape.
static PyObject* binary(const char* op, const char* spec, PyObject* args, binary_fn kernel)
{
    PyObject* objs[2];
    op_args arg;
    if (!PyArg_UnpackTuple(args, op, 2, 2, &objs[0], &objs[1])
        || args_parse(&arg, op, spec, objs, NULL)) return NULL;
    const npy_intp n = PyArray_SIZE(arg.arr[0]);
    Py_BEGIN_ALLOW_THREADS
    kernel(n, f32(arg.arr[0]), f32(arg.arr[1]), f32(arg.arr[2]));
    Py_END_ALLOW_THREADS
    return args_return(&arg, 0);
}

#define UNARY(op, kernel, in, out)                                           \
    static PyObject* py_##op(PyObject* self, PyObject* args)                 \
    {                                                                        \
        return unary(#op, #in "_* -> " #out "_*", args, kernel);             \
    }
#define BINARY(op, kernel, a, b, c)                                          \
    static PyObject* py_##op(PyObject* self, PyObject* args)                 \
    {                                                                        \
        return binary(#op, #a "_* " #b "_* -> " #c "_*", args, kernel);      \
    }

BINARY(add, add_f32, a, b, c)
UNARY(relu, relu_fwd, x, y)
BINARY(relu_bwd, relu_bwd, x, dy, dx)
UNARY(gelu, gelu_fwd, x, y)
BINARY(gelu_bwd, gelu_bwd, x, dy, dx)
UNARY(sigmoid, sigmoid_fwd, x, y)
BINARY(sigmoid_bwd, sigmoid_bwd, y, dy, dx)  // from the forward's output y
UNARY(tanh, tanh_fwd, x, y)
BINARY(tanh_bwd, tanh_bwd, y, dy, dx)        // from the forward's output y
BINARY(mse_bwd, mse_bwd, y, target, dy)

// A mean over no entries is no number: refused, as the contract refuses empty axes.
static int has_entries(op_args* a, int i, const char* what)
{
    if (PyArray_SIZE(a->arr[i]) > 0) return 0;
    fail_with_shape(PyExc_ValueError, a->op, a->name[i], what, a->arr[i]);
    args_release(a);
    return -1;
}

static PyObject* py_mse(PyObject* self, PyObject* args)
{
    PyObject* objs[2];
    op_args arg;
    if (!PyArg_UnpackTuple(args, "mse", 2, 2, &objs[0], &objs[1])
        || args_parse(&arg, "mse", "y_* target_*", objs, NULL)
        || has_entries(&arg, 0, "has no entries to average, got shape")) return NULL;
    const npy_intp n = PyArray_SIZE(arg.arr[0]);
    double loss;
    Py_BEGIN_ALLOW_THREADS
    loss = mse_fwd(n, f32(arg.arr[0]), f32(arg.arr[1]));
    Py_END_ALLOW_THREADS
    args_release(&arg);
    return PyFloat_FromDouble(loss);
}

// ---- rows ----------------------------------------------------------------------------------

static PyObject* py_layernorm(PyObject* self, PyObject* args)
{
    PyObject* objs[3];
    op_args arg;
    if (!PyArg_UnpackTuple(args, "layernorm", 3, 3, &objs[0], &objs[1], &objs[2])
        || args_parse(&arg, "layernorm", "x_RD gamma_D beta_D -> y_RD mean_R rstd_R", objs, NULL)
        || has_entries(&arg, 1, "has no features to normalise over, got shape")) return NULL;
    const npy_intp R = arg.size['R'], D = arg.size['D'];
    PyArrayObject** a = arg.arr;
    Py_BEGIN_ALLOW_THREADS
    layernorm_fwd(R, D, f32(a[0]), f32(a[1]), f32(a[2]), f32(a[3]), f32(a[4]), f32(a[5]));
    Py_END_ALLOW_THREADS
    return args_return(&arg, 0);
}

static PyObject* py_layernorm_bwd(PyObject* self, PyObject* args)
{
    PyObject* objs[5];
    op_args arg;
    if (!PyArg_UnpackTuple(args, "layernorm_bwd", 5, 5, &objs[0], &objs[1], &objs[2], &objs[3],
                           &objs[4])
        || args_parse(&arg, "layernorm_bwd",
                      "x_RD gamma_D mean_R rstd_R dy_RD -> dx_RD dgamma_D dbeta_D", objs, NULL)
        || has_entries(&arg, 1, "has no features to normalise over, got shape")) return NULL;
    const npy_intp R = arg.size['R'], D = arg.size['D'];
    PyArrayObject** a = arg.arr;
    Py_BEGIN_ALLOW_THREADS
    layernorm_bwd(R, D, f32(a[0]), f32(a[1]), f32(a[2]), f32(a[3]), f32(a[4]), f32(a[5]),
                  f32(a[6]), f32(a[7]));
    Py_END_ALLOW_THREADS
    return args_return(&arg, 0);
}

static PyObject* py_transpose(PyObject* self, PyObject* args)
{
    PyObject* objs[1];
    op_args arg;
    if (!PyArg_UnpackTuple(args, "transpose", 1, 1, &objs[0])
        || args_parse(&arg, "transpose", "a_MK -> at_KM", objs, NULL)) return NULL;
    const npy_intp M = arg.size['M'], K = arg.size['K'];
    Py_BEGIN_ALLOW_THREADS
    transpose_f32(M, K, f32(arg.arr[0]), f32(arg.arr[1]));
    Py_END_ALLOW_THREADS
    return args_return(&arg, 0);
}

static PyObject* py_embedding(PyObject* self, PyObject* args)
{
    PyObject* objs[2];  // w_VD, tokens_R: the table first, as the tokens' range needs V
    op_args arg;
    if (!PyArg_UnpackTuple(args, "embedding", 2, 2, &objs[1], &objs[0])
        || args_parse(&arg, "embedding", "w_VD tokens_R<V -> x_RD", objs, NULL)) return NULL;
    const npy_intp R = arg.size['R'], D = arg.size['D'];
    Py_BEGIN_ALLOW_THREADS
    embedding_fwd(R, D, PyArray_DATA(arg.arr[1]), f32(arg.arr[0]), f32(arg.arr[2]));
    Py_END_ALLOW_THREADS
    return args_return(&arg, 0);
}

static PyObject* py_embedding_bwd(PyObject* self, PyObject* args)
{
    PyObject* objs[3];
    op_args arg;
    if (!PyArg_UnpackTuple(args, "embedding_bwd", 3, 3, &objs[0], &objs[1], &objs[2])
        || args_parse(&arg, "embedding_bwd", "w_VD tokens_R<V dx_RD -> dw_VD", objs, NULL)) {
        return NULL;
    }
    const npy_intp R = arg.size['R'], V = arg.size['V'], D = arg.size['D'];
    Py_BEGIN_ALLOW_THREADS
    embedding_bwd(R, V, D, PyArray_DATA(arg.arr[1]), f32(arg.arr[2]), f32(arg.arr[3]));
    Py_END_ALLOW_THREADS
    return args_return(&arg, 0);
}

PyMethodDef nn_methods[] = {
    {"add", py_add, METH_VARARGS, "add(a_*, b_*) -> c_*"},
    {"relu", py_relu, METH_VARARGS, "relu(x_*) -> y_*"},
    {"relu_bwd", py_relu_bwd, METH_VARARGS, "relu_bwd(x_*, dy_*) -> dx_*"},
    {"gelu", py_gelu, METH_VARARGS, "gelu(x_*) -> y_*: GPT-2's tanh form"},
    {"gelu_bwd", py_gelu_bwd, METH_VARARGS, "gelu_bwd(x_*, dy_*) -> dx_*"},
    {"sigmoid", py_sigmoid, METH_VARARGS, "sigmoid(x_*) -> y_*"},
    {"sigmoid_bwd", py_sigmoid_bwd, METH_VARARGS, "sigmoid_bwd(y_*, dy_*) -> dx_*"},
    {"tanh", py_tanh, METH_VARARGS, "tanh(x_*) -> y_*"},
    {"tanh_bwd", py_tanh_bwd, METH_VARARGS, "tanh_bwd(y_*, dy_*) -> dx_*"},
    {"mse", py_mse, METH_VARARGS, "mse(y_*, target_*) -> the mean of (y - target)^2"},
    {"mse_bwd", py_mse_bwd, METH_VARARGS, "mse_bwd(y_*, target_*) -> dy_*"},
    {"layernorm", py_layernorm, METH_VARARGS,
     "layernorm(x_RD, gamma_D, beta_D) -> (y_RD, mean_R, rstd_R)"},
    {"layernorm_bwd", py_layernorm_bwd, METH_VARARGS,
     "layernorm_bwd(x_RD, gamma_D, mean_R, rstd_R, dy_RD) -> (dx_RD, dgamma_D, dbeta_D)"},
    {"transpose", py_transpose, METH_VARARGS, "transpose(a_MK) -> at_KM"},
    {"embedding", py_embedding, METH_VARARGS, "embedding(tokens_R, w_VD) -> x_RD"},
    {"embedding_bwd", py_embedding_bwd, METH_VARARGS,
     "embedding_bwd(w_VD, tokens_R, dx_RD) -> dw_VD"},
    {NULL, NULL, 0, NULL},
};
