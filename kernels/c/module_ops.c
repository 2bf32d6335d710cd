/* nnladder_c's wrappers of softmax, cross-entropy and the optimizer updates (ops.c), each
 * parsed and checked by its spec (args.h); the elementwise ops are module_nn.c's.
 */
#include "args.h"

// ---- softmax and cross-entropy -------------------------------------------------------------

static PyObject* py_softmax(PyObject* self, PyObject* args)
{
    PyObject* objs[1];
    int causal;
    double scale;
    op_args arg;
    if (!PyArg_ParseTuple(args, "Opd:softmax", &objs[0], &causal, &scale)
        || args_parse(&arg, "softmax", "x_XTS -> y_XTS", objs, NULL)) return NULL;
    const npy_intp X = arg.size['X'], T = arg.size['T'], S = arg.size['S'];
    Py_BEGIN_ALLOW_THREADS
    softmax_fwd(X, T, S, f32(arg.arr[0]), f32(arg.arr[1]), causal, (float)scale);
    Py_END_ALLOW_THREADS
    return args_return(&arg, 0);
}

static PyObject* py_softmax_bwd(PyObject* self, PyObject* args)
{
    PyObject* objs[2];
    double scale;
    op_args arg;
    if (!PyArg_ParseTuple(args, "OOd:softmax_bwd", &objs[0], &objs[1], &scale)
        || args_parse(&arg, "softmax_bwd", "y_XTS dy_XTS -> dx_XTS", objs, NULL)) return NULL;
    const npy_intp rows = arg.size['X'] * arg.size['T'], S = arg.size['S'];
    Py_BEGIN_ALLOW_THREADS
    softmax_bwd(rows, S, f32(arg.arr[0]), f32(arg.arr[1]), f32(arg.arr[2]), (float)scale);
    Py_END_ALLOW_THREADS
    return args_return(&arg, 0);
}

static PyObject* py_softmax_xent(PyObject* self, PyObject* args)
{
    PyObject* objs[2];
    op_args arg;
    if (!PyArg_ParseTuple(args, "OO:softmax_xent", &objs[0], &objs[1])
        || args_parse(&arg, "softmax_xent", "logits_BC labels_B<C -> probs_BC", objs, NULL)) {
        return NULL;
    }
    const npy_intp B = arg.size['B'], C = arg.size['C'];
    double loss;
    Py_BEGIN_ALLOW_THREADS
    loss = softmax_xent_fwd(B, C, f32(arg.arr[0]), PyArray_DATA(arg.arr[1]), f32(arg.arr[2])) / B;
    Py_END_ALLOW_THREADS
    PyObject* result = Py_BuildValue("dO", loss, arg.arr[2]);
    args_release(&arg);
    return result;
}

static PyObject* py_softmax_xent_bwd(PyObject* self, PyObject* args)
{
    PyObject* objs[2];
    op_args arg;
    if (!PyArg_ParseTuple(args, "OO:softmax_xent_bwd", &objs[0], &objs[1])
        || args_parse(&arg, "softmax_xent_bwd", "probs_BC labels_B<C -> dlogits_BC", objs, NULL)) {
        return NULL;
    }
    const npy_intp B = arg.size['B'], C = arg.size['C'];
    Py_BEGIN_ALLOW_THREADS
    softmax_xent_bwd(B, C, f32(arg.arr[0]), PyArray_DATA(arg.arr[1]), f32(arg.arr[2]), 1.0f / B);
    Py_END_ALLOW_THREADS
    return args_return(&arg, 0);
}

// ---- optimizer updates, in place: p, then its state, then g (only read, so it may be copied)

static PyObject* py_sgd(PyObject* self, PyObject* args)
{
    PyObject* objs[2];
    double lr;
    int rung;
    op_args arg;
    if (!PyArg_ParseTuple(args, "OOdi:sgd", &objs[0], &objs[1], &lr, &rung)
        || args_parse(&arg, "sgd", "p! g", objs, &rung)) return NULL;
    const npy_intp n = PyArray_SIZE(arg.arr[0]);
    Py_BEGIN_ALLOW_THREADS
    sgd_update(n, f32(arg.arr[0]), f32(arg.arr[1]), (float)lr, arg.threads);
    Py_END_ALLOW_THREADS
    return args_return(&arg, 0);
}

static PyObject* py_momentum(PyObject* self, PyObject* args)
{
    PyObject* objs[3];  // p, v, g
    double lr, mu;
    int rung;
    op_args arg;
    if (!PyArg_ParseTuple(args, "OOOddi:momentum", &objs[0], &objs[2], &objs[1], &lr, &mu, &rung)
        || args_parse(&arg, "momentum", "p! v! g", objs, &rung)) return NULL;
    const npy_intp n = PyArray_SIZE(arg.arr[0]);
    Py_BEGIN_ALLOW_THREADS
    momentum_update(n, f32(arg.arr[0]), f32(arg.arr[2]), f32(arg.arr[1]), (float)lr, (float)mu,
                    arg.threads);
    Py_END_ALLOW_THREADS
    return args_return(&arg, 0);
}

static PyObject* py_adam(PyObject* self, PyObject* args)
{
    PyObject* objs[4];  // p, m, v, g
    long t;
    double lr, beta1, beta2, eps;
    int rung;
    op_args arg;
    if (!PyArg_ParseTuple(args, "OOOOlddddi:adam", &objs[0], &objs[3], &objs[1], &objs[2], &t,
                          &lr, &beta1, &beta2, &eps, &rung) || check_rung(rung)) return NULL;
    if (t < 1) {
        PyErr_Format(PyExc_ValueError, "adam: t counts steps from 1, got %ld", t);
        return NULL;
    }
    if (args_parse(&arg, "adam", "p! m! v! g", objs, &rung)) return NULL;
    const npy_intp n = PyArray_SIZE(arg.arr[0]);
    Py_BEGIN_ALLOW_THREADS
    adam_update(n, f32(arg.arr[0]), f32(arg.arr[3]), f32(arg.arr[1]), f32(arg.arr[2]), t, lr,
                beta1, beta2, eps, arg.threads);
    Py_END_ALLOW_THREADS
    return args_return(&arg, 0);
}

PyMethodDef ops_methods[] = {
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
    {NULL, NULL, 0, NULL},
};
