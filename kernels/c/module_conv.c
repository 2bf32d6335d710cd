/* nnladder_c's wrappers of the conv and the pool (conv.c). Their outputs' U and W come from
 * sliding windows, which no spec letter can say: args_take checks the arrays, window() below
 * sizes U and W (or checks a backward's dy against them) as harness/arguments.py's
 * _check_window does, and args_alloc makes the outputs.
 */
#include "args.h"

// stride >= 1 and padding >= 0, before any array is taken.
static int check_steps(const char* op, Py_ssize_t stride, Py_ssize_t padding)
{
    if (stride < 1) {
        PyErr_Format(PyExc_ValueError, "%s: stride must be a whole number >= 1, got %zd", op,
                     stride);
        return -1;
    }
    if (padding < 0) {
        PyErr_Format(PyExc_ValueError, "%s: padding must be a whole number >= 0, got %zd", op,
                     padding);
        return -1;
    }
    return 0;
}

/* Letter `out` (U) of a window of `kernel` entries (the size of letter `kernel_letter`, or POOL
 * for the pool's 0) sliding by `stride` over letter `in` (Y) padded by `padding` on each side:
 * out = (in + 2 padding - kernel) / stride + 1, which must be >= 1, with padding less than the
 * kernel (no window of padding alone). An out that an input already sized (a backward's dy)
 * must be that size; else it is set. -> 0, or -1 with a ValueError and a released. */
static int window(op_args* a, char out, char in, char kernel_letter, Py_ssize_t stride,
                  Py_ssize_t padding)
{
    const npy_intp kernel = kernel_letter ? a->size[(int)kernel_letter] : POOL;
    const int holder = a->first[(int)in];  // the image, x_BQYZ
    PyObject* shape = shape_text(a->arr[holder]);
    if (!shape) goto fail;
    char of_kernel[80];  // "the J axis of w_FQJL (3)", "the pool's window (2)"
    if (kernel_letter) {
        snprintf(of_kernel, sizeof of_kernel, "the %c axis of %s (%zd)", kernel_letter,
                 a->name[a->first[(int)kernel_letter]], kernel);
    } else {
        snprintf(of_kernel, sizeof of_kernel, "the pool's window (%d)", POOL);
    }
    npy_intp fits = 0;  // (C's / truncates a negative span toward 0, Python's // floors it)
    if (padding < kernel && a->size[(int)in] + 2 * padding >= kernel) {
        fits = (a->size[(int)in] + 2 * padding - kernel) / stride + 1;
    }
    if (padding >= kernel) {
        PyErr_Format(PyExc_ValueError, "%s: padding is %zd but the kernel is %s: padding must be "
                     "less than the kernel (no window of padding alone)", a->op, padding,
                     of_kernel);
    } else if (fits < 1) {
        PyErr_Format(PyExc_ValueError, "%s: %s has shape %U: its %c axis (%zd) with padding %zd "
                     "on each side is smaller than %s", a->op, a->name[holder], shape, in,
                     a->size[(int)in], padding, of_kernel);
    } else if (a->first[(int)out] >= 0 && a->size[(int)out] != fits) {
        const int other = a->first[(int)out];
        PyObject* other_shape = shape_text(a->arr[other]);
        if (other_shape) {
            PyErr_Format(PyExc_ValueError, "%s: %s has shape %U but its %c axis must be (%zd + "
                         "2*%zd - %zd) // %zd + 1 = %zd, the windows that fit the %c axis of %s "
                         "%U", a->op, a->name[other], other_shape, out, a->size[(int)in],
                         padding, kernel, stride, fits, in, a->name[holder], shape);
            Py_DECREF(other_shape);
        }
    } else {
        a->size[(int)out] = fits;
        Py_DECREF(shape);
        return 0;
    }
    Py_DECREF(shape);
fail:
    args_release(a);
    return -1;
}

static conv_dims dims_of(const op_args* a, Py_ssize_t stride, Py_ssize_t padding)
{
    const npy_intp* s = a->size;
    return (conv_dims){s['B'], s['Q'], s['Y'], s['Z'], s['F'], s['J'], s['L'], s['U'], s['W'],
                       stride, padding};
}

static PyObject* py_conv2d(PyObject* self, PyObject* args)
{
    PyObject* objs[3];
    Py_ssize_t stride, padding;
    int rung, failed;
    op_args arg;
    if (!PyArg_ParseTuple(args, "OOOnni:conv2d", &objs[0], &objs[1], &objs[2], &stride, &padding,
                          &rung)
        || check_steps("conv2d", stride, padding)
        || args_take(&arg, "conv2d", "x_BQYZ w_FQJL b_F -> y_BFUW", objs, &rung)
        || window(&arg, 'U', 'Y', 'J', stride, padding)
        || window(&arg, 'W', 'Z', 'L', stride, padding) || args_alloc(&arg)) return NULL;
    const conv_dims d = dims_of(&arg, stride, padding);
    PyArrayObject** a = arg.arr;
    Py_BEGIN_ALLOW_THREADS
    failed = conv2d_fwd(rung, arg.threads, d, f32(a[0]), f32(a[1]), f32(a[2]), f32(a[3]));
    Py_END_ALLOW_THREADS
    return args_return(&arg, failed);
}

static PyObject* py_conv2d_bwd(PyObject* self, PyObject* args)
{
    PyObject* objs[3];
    Py_ssize_t stride, padding;
    int rung, failed;
    op_args arg;
    if (!PyArg_ParseTuple(args, "OOOnni:conv2d_bwd", &objs[0], &objs[1], &objs[2], &stride,
                          &padding, &rung)
        || check_steps("conv2d_bwd", stride, padding)
        || args_take(&arg, "conv2d_bwd", "x_BQYZ w_FQJL dy_BFUW -> dx_BQYZ dw_FQJL db_F", objs,
                     &rung)
        || window(&arg, 'U', 'Y', 'J', stride, padding)
        || window(&arg, 'W', 'Z', 'L', stride, padding) || args_alloc(&arg)) return NULL;
    const conv_dims d = dims_of(&arg, stride, padding);
    PyArrayObject** a = arg.arr;
    Py_BEGIN_ALLOW_THREADS
    failed = conv2d_bwd(rung, arg.threads, d, f32(a[0]), f32(a[1]), f32(a[2]), f32(a[3]),
                        f32(a[4]), f32(a[5]));
    Py_END_ALLOW_THREADS
    return args_return(&arg, failed);
}

static PyObject* py_maxpool2d(PyObject* self, PyObject* args)
{
    PyObject* objs[1];
    op_args arg;
    if (!PyArg_UnpackTuple(args, "maxpool2d", 1, 1, &objs[0])
        || args_take(&arg, "maxpool2d", "x_BQYZ -> y_BQUW", objs, NULL)
        || window(&arg, 'U', 'Y', 0, POOL, 0) || window(&arg, 'W', 'Z', 0, POOL, 0)
        || args_alloc(&arg)) return NULL;
    const npy_intp images = arg.size['B'] * arg.size['Q'], Y = arg.size['Y'], Z = arg.size['Z'];
    Py_BEGIN_ALLOW_THREADS
    maxpool2d_fwd(images, Y, Z, f32(arg.arr[0]), f32(arg.arr[1]));
    Py_END_ALLOW_THREADS
    return args_return(&arg, 0);
}

static PyObject* py_maxpool2d_bwd(PyObject* self, PyObject* args)
{
    PyObject* objs[2];
    op_args arg;
    if (!PyArg_UnpackTuple(args, "maxpool2d_bwd", 2, 2, &objs[0], &objs[1])
        || args_take(&arg, "maxpool2d_bwd", "x_BQYZ dy_BQUW -> dx_BQYZ", objs, NULL)
        || window(&arg, 'U', 'Y', 0, POOL, 0) || window(&arg, 'W', 'Z', 0, POOL, 0)
        || args_alloc(&arg)) return NULL;
    const npy_intp images = arg.size['B'] * arg.size['Q'], Y = arg.size['Y'], Z = arg.size['Z'];
    Py_BEGIN_ALLOW_THREADS
    maxpool2d_bwd(images, Y, Z, f32(arg.arr[0]), f32(arg.arr[1]), f32(arg.arr[2]));
    Py_END_ALLOW_THREADS
    return args_return(&arg, 0);
}

PyMethodDef conv_methods[] = {
    {"conv2d", py_conv2d, METH_VARARGS,
     "conv2d(x_BQYZ, w_FQJL, b_F, stride, padding, rung) -> y_BFUW"},
    {"conv2d_bwd", py_conv2d_bwd, METH_VARARGS,
     "conv2d_bwd(x_BQYZ, w_FQJL, dy_BFUW, stride, padding, rung) -> (dx_BQYZ, dw_FQJL, db_F)"},
    {"maxpool2d", py_maxpool2d, METH_VARARGS, "maxpool2d(x_BQYZ) -> y_BQUW: 2 x 2, stride 2"},
    {"maxpool2d_bwd", py_maxpool2d_bwd, METH_VARARGS, "maxpool2d_bwd(x_BQYZ, dy_BQUW) -> dx_BQYZ"},
    {NULL, NULL, 0, NULL},
};
