/* nnladder_c's fused MLP (mlp.c): mlp_forward and mlp_backward.
 *
 * The params are a list whose length sets the layers, and layer l's I axis is layer l - 1's O:
 * letters that take a new size every layer, which a fixed spec cannot say. So the chain is
 * checked here from args.c's pieces (as_input, agree, as_labels), with the same messages, and
 * everything a call holds sits in one mlp_args that mlp_release frees on every path.
 */
#include "args.h"

typedef struct {
    int L;                     // layers
    int threads;               // the team size for the rung
    PyArrayObject *x_BI, *probs_BC, *labels_B;
    PyArrayObject** wb;        // 2L new references: w0_IO, b0_O, w1_IO, b1_O, ...
    PyArrayObject** h_BO;      // backward: the L - 1 hidden outputs it was given, new references
    ptrdiff_t* width;          // L + 1: x's features, then each layer's outputs
    const float **w, **b;      // L pointers into wb
    float **h, **dw, **db;     // L pointers: hidden outputs; the backward's gradients
} mlp_args;

static void mlp_release(mlp_args* p)
{
    for (int i = 0; p->wb && i < 2 * p->L; i++) Py_XDECREF(p->wb[i]);
    for (int l = 0; p->h_BO && l < p->L - 1; l++) Py_XDECREF(p->h_BO[l]);
    Py_XDECREF(p->x_BI);
    Py_XDECREF(p->probs_BC);
    Py_XDECREF(p->labels_B);
    void* tables[] = {p->wb, p->h_BO, p->width, p->w, p->b, p->h, p->dw, p->db};
    for (size_t i = 0; i < sizeof tables / sizeof *tables; i++) PyMem_Free(tables[i]);
    *p = (mlp_args){0};
}

/* The rung, x_BI and the params [w0_IO, b0_O, w1_IO, b1_O, ...]: a list or tuple of (w, b)
 * pairs whose widths chain, starting from x_BI's features. -> 0, or -1 with an error and
 * nothing held. */
static int mlp_parse(const char* op, mlp_args* p, PyObject* params, PyObject* x_obj, int rung)
{
    *p = (mlp_args){0};
    if (check_rung(rung) || !(p->x_BI = as_input(op, "x_BI", x_obj))) goto fail;
    p->threads = threads_for(rung);
    if (!PyList_Check(params) && !PyTuple_Check(params)) {
        PyErr_Format(PyExc_TypeError, "%s: params must be a list [w0_IO, b0_O, w1_IO, b1_O, "
                     "...], got %s", op, Py_TYPE(params)->tp_name);
        goto fail;
    }
    const Py_ssize_t n = PySequence_Fast_GET_SIZE(params);
    if (n < 2 || n % 2 || n > 2 * 4096) {
        PyErr_Format(PyExc_ValueError, "%s: params must hold one (w_IO, b_O) pair per layer, "
                     "got %zd arrays", op, n);
        goto fail;
    }
    const int L = p->L = (int)(n / 2);
    p->wb = PyMem_Calloc(n, sizeof *p->wb);
    p->h_BO = PyMem_Calloc(L, sizeof *p->h_BO);
    p->width = PyMem_Calloc(L + 1, sizeof *p->width);
    p->w = PyMem_Calloc(L, sizeof *p->w);
    p->b = PyMem_Calloc(L, sizeof *p->b);
    p->h = PyMem_Calloc(L, sizeof *p->h);
    p->dw = PyMem_Calloc(L, sizeof *p->dw);
    p->db = PyMem_Calloc(L, sizeof *p->db);
    if (!p->wb || !p->h_BO || !p->width || !p->w || !p->b || !p->h || !p->dw || !p->db) {
        PyErr_NoMemory();
        goto fail;
    }
    p->width[0] = PyArray_DIM(p->x_BI, 1);
    for (int l = 0; l < L; l++) {
        char w_name[32], b_name[32], prev_name[32];
        snprintf(w_name, sizeof w_name, "w%d_IO", l);
        snprintf(b_name, sizeof b_name, "b%d_O", l);
        snprintf(prev_name, sizeof prev_name, "w%d_IO", l - 1);
        PyArrayObject *w_IO, *b_O;
        if (!(w_IO = p->wb[2 * l] = as_input(op, w_name, PySequence_Fast_GET_ITEM(params, 2 * l)))
            || !(b_O = p->wb[2 * l + 1] =
                     as_input(op, b_name, PySequence_Fast_GET_ITEM(params, 2 * l + 1)))
            || (l == 0 ? agree(op, "x_BI", p->x_BI, 1, w_name, w_IO, 0)
                       : agree(op, prev_name, p->wb[2 * l - 2], 1, w_name, w_IO, 0))
            || agree(op, w_name, w_IO, 1, b_name, b_O, 0)) goto fail;
        p->width[l + 1] = PyArray_DIM(w_IO, 1);
        p->w[l] = f32(w_IO);
        p->b[l] = f32(b_O);
    }
    return 0;
fail:
    mlp_release(p);
    return -1;
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
    const char* op = "mlp_forward";
    PyObject *params_obj, *x_obj, *labels_obj, *result = NULL, *h_tuple = NULL;
    int rung, failed;
    mlp_args p;
    if (!PyArg_ParseTuple(args, "OOOi:mlp_forward", &params_obj, &x_obj, &labels_obj, &rung)
        || mlp_parse(op, &p, params_obj, x_obj, rung)) return NULL;
    const npy_intp B = PyArray_DIM(p.x_BI, 0), C = p.width[p.L];
    if (B == 0 || C == 0) {
        fail_with_shape(PyExc_ValueError, op, "x_BI", "needs at least one row, and the last "
                        "layer at least one class; got x_BI of shape", p.x_BI);
        goto done;
    }
    if (!(p.labels_B = as_labels(op, "labels_B", labels_obj, B, C))
        || !(p.probs_BC = new_f32(2, (npy_intp[]){B, C}))
        || !(h_tuple = PyTuple_New(p.L - 1))) goto done;
    for (int l = 0; l < p.L - 1; l++) {  // the hidden layers' relu outputs: the backward's cache
        PyArrayObject* h_BO = new_f32(2, (npy_intp[]){B, p.width[l + 1]});
        if (!h_BO) goto done;
        PyTuple_SET_ITEM(h_tuple, l, (PyObject*)h_BO);
        p.h[l] = f32(h_BO);
    }
    double loss = 0.0;
    Py_BEGIN_ALLOW_THREADS
    failed = mlp_fwd(rung, p.threads, B, p.L, p.width, p.w, p.b, f32(p.x_BI), p.h,
                     PyArray_DATA(p.labels_B), f32(p.probs_BC), &loss);
    Py_END_ALLOW_THREADS
    result = failed ? PyErr_NoMemory() : Py_BuildValue("dOO", loss, p.probs_BC, h_tuple);
done:
    Py_XDECREF(h_tuple);
    mlp_release(&p);
    return result;
}

static PyObject* py_mlp_backward(PyObject* self, PyObject* args)
{
    const char* op = "mlp_backward";
    PyObject *params_obj, *x_obj, *h_obj, *probs_obj, *labels_obj, *grads = NULL;
    int rung, failed;
    mlp_args p;
    if (!PyArg_ParseTuple(args, "OOOOOi:mlp_backward", &params_obj, &x_obj, &h_obj, &probs_obj,
                          &labels_obj, &rung)
        || mlp_parse(op, &p, params_obj, x_obj, rung)) return NULL;
    const npy_intp B = PyArray_DIM(p.x_BI, 0), C = p.width[p.L];
    if (!(p.probs_BC = as_input(op, "probs_BC", probs_obj))
        || has_shape(op, "probs_BC", p.probs_BC, B, C)) goto done;
    if (B == 0 || C == 0) {
        fail_with_shape(PyExc_ValueError, op, "probs_BC", "needs at least one row and one "
                        "class, got shape", p.probs_BC);
        goto done;
    }
    if (!(p.labels_B = as_labels(op, "labels_B", labels_obj, B, C))) goto done;
    if (!PyTuple_Check(h_obj) || PyTuple_GET_SIZE(h_obj) != p.L - 1) {
        PyErr_Format(PyExc_ValueError, "%s: h must be the tuple of %d hidden outputs that "
                     "mlp_forward returned, got %R", op, p.L - 1, h_obj);
        goto done;
    }
    for (int l = 0; l < p.L - 1; l++) {
        char name[32];
        snprintf(name, sizeof name, "h%d_BO", l);
        if (!(p.h_BO[l] = as_input(op, name, PyTuple_GET_ITEM(h_obj, l)))
            || has_shape(op, name, p.h_BO[l], B, p.width[l + 1])) goto done;
        p.h[l] = f32(p.h_BO[l]);
    }
    if (!(grads = PyList_New(2 * p.L))) goto done;
    for (int l = 0; l < p.L; l++) {
        PyArrayObject *dw_IO = new_f32(2, (npy_intp[]){p.width[l], p.width[l + 1]}),
                      *db_O = new_f32(1, (npy_intp[]){p.width[l + 1]});
        if (dw_IO) PyList_SET_ITEM(grads, 2 * l, (PyObject*)dw_IO);
        if (db_O) PyList_SET_ITEM(grads, 2 * l + 1, (PyObject*)db_O);
        if (!dw_IO || !db_O) goto fail;
        p.dw[l] = f32(dw_IO);
        p.db[l] = f32(db_O);
    }
    Py_BEGIN_ALLOW_THREADS
    failed = mlp_bwd(rung, p.threads, B, p.L, p.width, p.w, f32(p.x_BI),
                     (const float* const*)p.h, f32(p.probs_BC), PyArray_DATA(p.labels_B), p.dw,
                     p.db);
    Py_END_ALLOW_THREADS
    if (!failed) goto done;
    PyErr_NoMemory();
fail:
    Py_CLEAR(grads);
done:
    mlp_release(&p);
    return grads;
}

PyMethodDef mlp_methods[] = {
    {"mlp_forward", py_mlp_forward, METH_VARARGS,
     "mlp_forward(params, x_BI, labels_B, rung) -> (loss, probs_BC, h): the MLP's forward and "
     "loss; h, the hidden layers' relu outputs, is what mlp_backward needs"},
    {"mlp_backward", py_mlp_backward, METH_VARARGS,
     "mlp_backward(params, x_BI, h, probs_BC, labels_B, rung) -> [dw0_IO, db0_O, ...]"},
    {NULL, NULL, 0, NULL},
};
