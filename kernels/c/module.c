/* nnladder_c: the Python face of the C rung, one function per contract op. This file: the
 * module, its products (gemm.c) and configuration; module_ops.c wraps softmax, cross-entropy
 * and the updates (ops.c), module_nn.c the elementwise ops, layernorm and the embedding (nn.c),
 * module_conv.c the conv and the pool (conv.c) and module_mlp.c the fused model (mlp.c).
 *
 * Every wrapper is the same steps: the arguments parsed and checked against the op's spec of
 * shape-suffixed names, the outputs allocated from the sizes the spec's letters got (args.h);
 * the GIL released while the kernel runs; every array released and the outputs returned
 * (args_return). Outputs are new arrays; the only memory the kernels allocate is GEMM's packing
 * buffers and a conv's cols, freed before they return. `rung` picks the GEMM (1 naive,
 * 2 loops, 3 blocked, 4 threads).
 */
#define NNLADDER_IMPORT_ARRAY  // PyInit below fills NumPy's API table for every file
#include "args.h"

// ---- products ------------------------------------------------------------------------------

static PyObject* py_matmul(PyObject* self, PyObject* args)
{
    PyObject* objs[2];
    int rung, failed;
    op_args arg;
    if (!PyArg_ParseTuple(args, "OOi:matmul", &objs[0], &objs[1], &rung)
        || args_parse(&arg, "matmul", "a_MK b_KN -> c_MN", objs, &rung)) return NULL;
    const npy_intp M = arg.size['M'], K = arg.size['K'], N = arg.size['N'];
    Py_BEGIN_ALLOW_THREADS
    failed = gemm(rung, M, N, K, rows_of(arg.arr[0], K), rows_of(arg.arr[1], N), f32(arg.arr[2]),
                  N, 0, arg.threads);
    Py_END_ALLOW_THREADS
    return args_return(&arg, failed);
}

static PyObject* py_matmul_bwd(PyObject* self, PyObject* args)
{
    PyObject* objs[3];
    int rung, failed;
    op_args arg;
    if (!PyArg_ParseTuple(args, "OOOi:matmul_bwd", &objs[0], &objs[1], &objs[2], &rung)
        || args_parse(&arg, "matmul_bwd", "a_MK b_KN dc_MN -> da_MK db_KN", objs, &rung)) {
        return NULL;
    }
    const npy_intp M = arg.size['M'], K = arg.size['K'], N = arg.size['N'];
    PyArrayObject *a_MK = arg.arr[0], *b_KN = arg.arr[1], *dc_MN = arg.arr[2];
    Py_BEGIN_ALLOW_THREADS
    // da = dc @ b^T (contract over N); db = a^T @ dc (contract over M)
    failed = gemm_pair(rung, (gemm_call){M, K, N, rows_of(dc_MN, N), transposed(b_KN, N),
                                         f32(arg.arr[3]), K, 0},
                       (gemm_call){K, N, M, transposed(a_MK, K), rows_of(dc_MN, N),
                                   f32(arg.arr[4]), N, 0}, arg.threads);
    Py_END_ALLOW_THREADS
    return args_return(&arg, failed);
}

static PyObject* py_bmm(PyObject* self, PyObject* args)
{
    PyObject* objs[2];
    int rung, failed;
    op_args arg;
    if (!PyArg_ParseTuple(args, "OOi:bmm", &objs[0], &objs[1], &rung)
        || args_parse(&arg, "bmm", "a_XMK b_XKN -> c_XMN", objs, &rung)) return NULL;
    const npy_intp X = arg.size['X'], M = arg.size['M'], K = arg.size['K'], N = arg.size['N'];
    Py_BEGIN_ALLOW_THREADS
    failed = gemm_batched(rung, X, M, N, K, rows_of(arg.arr[0], K), M * K, rows_of(arg.arr[1], N),
                          K * N, f32(arg.arr[2]), arg.threads);
    Py_END_ALLOW_THREADS
    return args_return(&arg, failed);
}

static PyObject* py_bmm_bwd(PyObject* self, PyObject* args)
{
    PyObject* objs[3];
    int rung, failed;
    op_args arg;
    if (!PyArg_ParseTuple(args, "OOOi:bmm_bwd", &objs[0], &objs[1], &objs[2], &rung)
        || args_parse(&arg, "bmm_bwd", "a_XMK b_XKN dc_XMN -> da_XMK db_XKN", objs, &rung)) {
        return NULL;
    }
    const npy_intp X = arg.size['X'], M = arg.size['M'], K = arg.size['K'], N = arg.size['N'];
    PyArrayObject *a_XMK = arg.arr[0], *b_XKN = arg.arr[1], *dc_XMN = arg.arr[2];
    Py_BEGIN_ALLOW_THREADS
    // per batch: da = dc @ b^T (contract over N); db = a^T @ dc (contract over M)
    failed = gemm_batched(rung, X, M, K, N, rows_of(dc_XMN, N), M * N, transposed(b_XKN, N),
                          K * N, f32(arg.arr[3]), arg.threads)
             || gemm_batched(rung, X, K, N, M, transposed(a_XMK, K), M * K, rows_of(dc_XMN, N),
                             M * N, f32(arg.arr[4]), arg.threads);
    Py_END_ALLOW_THREADS
    return args_return(&arg, failed);
}

static PyObject* py_linear(PyObject* self, PyObject* args)
{
    PyObject* objs[3];
    int rung, failed;
    op_args arg;
    if (!PyArg_ParseTuple(args, "OOOi:linear", &objs[0], &objs[1], &objs[2], &rung)
        || args_parse(&arg, "linear", "x_BI w_IO b_O -> y_BO", objs, &rung)) return NULL;
    const npy_intp B = arg.size['B'], I = arg.size['I'], O = arg.size['O'];
    float* y_BO = f32(arg.arr[3]);
    Py_BEGIN_ALLOW_THREADS
    bias_rows(B, O, f32(arg.arr[2]), y_BO);  // then y += x @ w
    failed = gemm(rung, B, O, I, rows_of(arg.arr[0], I), rows_of(arg.arr[1], O), y_BO, O, 1,
                  arg.threads);
    Py_END_ALLOW_THREADS
    return args_return(&arg, failed);
}

static PyObject* py_linear_bwd(PyObject* self, PyObject* args)
{
    PyObject* objs[3];
    int rung, failed;
    op_args arg;
    if (!PyArg_ParseTuple(args, "OOOi:linear_bwd", &objs[0], &objs[1], &objs[2], &rung)
        || args_parse(&arg, "linear_bwd", "x_BI w_IO dy_BO -> dx_BI dw_IO db_O", objs, &rung)) {
        return NULL;
    }
    const npy_intp B = arg.size['B'], I = arg.size['I'], O = arg.size['O'];
    PyArrayObject *x_BI = arg.arr[0], *w_IO = arg.arr[1], *dy_BO = arg.arr[2];
    Py_BEGIN_ALLOW_THREADS
    // dx = dy @ w^T (contract over O); dw = x^T @ dy (contract over B); db = column sums of dy
    failed = gemm_pair(rung, (gemm_call){B, I, O, rows_of(dy_BO, O), transposed(w_IO, O),
                                         f32(arg.arr[3]), I, 0},
                       (gemm_call){I, O, B, transposed(x_BI, I), rows_of(dy_BO, O),
                                   f32(arg.arr[4]), O, 0}, arg.threads);
    column_sums(B, O, f32(dy_BO), f32(arg.arr[5]));
    Py_END_ALLOW_THREADS
    return args_return(&arg, failed);
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

PyObject* py_peak(PyObject* self, PyObject* args);  // module_peaks.c
PyObject* py_peak_isas(PyObject* self, PyObject* args);

static PyMethodDef methods[] = {
    {"matmul", py_matmul, METH_VARARGS, "matmul(a_MK, b_KN, rung) -> c_MN"},
    {"matmul_bwd", py_matmul_bwd, METH_VARARGS, "matmul_bwd(a_MK, b_KN, dc_MN, rung) -> (da, db)"},
    {"bmm", py_bmm, METH_VARARGS, "bmm(a_XMK, b_XKN, rung) -> c_XMN"},
    {"bmm_bwd", py_bmm_bwd, METH_VARARGS, "bmm_bwd(a_XMK, b_XKN, dc_XMN, rung) -> (da, db)"},
    {"linear", py_linear, METH_VARARGS, "linear(x_BI, w_IO, b_O, rung) -> y_BO"},
    {"linear_bwd", py_linear_bwd, METH_VARARGS,
     "linear_bwd(x_BI, w_IO, dy_BO, rung) -> (dx_BI, dw_IO, db_O)"},
    {"threads", py_threads, METH_NOARGS, "threads() -> the team size rung 4 uses now"},
    {"kernel", py_kernel, METH_NOARGS, "kernel() -> the GEMM micro-kernel in use"},
    {"set_kernel", py_set_kernel, METH_VARARGS,
     "set_kernel(name): 'auto' (the best this CPU runs), 'avx2' or 'scalar'"},
    {"peak", py_peak, METH_VARARGS,
     "peak(kind, bytes, threads, seconds, isa='auto') -> (FLOP/s or bytes/s, isa): the ceilings"},
    {"peak_isas", py_peak_isas, METH_NOARGS, "peak_isas() -> the isas peak runs here, widest first"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "nnladder_c", "The C rung's kernels (kernels/c).", -1, methods,
};

PyMODINIT_FUNC PyInit_nnladder_c(void)
{
    import_array();
    gemm_set_kernel("auto");
    PyObject* m = PyModule_Create(&module);
    PyMethodDef* tables[] = {ops_methods, nn_methods, conv_methods, mlp_methods};
    for (size_t i = 0; m && i < sizeof tables / sizeof *tables; i++) {
        if (PyModule_AddFunctions(m, tables[i])) Py_CLEAR(m);
    }
    return m;
}
