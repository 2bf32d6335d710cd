"""The CUDA kernels, run on the CPU: the same .cu sources built with g++ and a CUDA emulation.

tests/cuda_emu/cuda_emu.h gives blockIdx, threadIdx, __shared__ and __syncthreads a CPU
meaning (one std::thread per GPU thread of a block, a real barrier), and warp shuffles,
__syncwarp and float atomicAdd too (warp_selftest.cu checks them lane by lane); driver.h
runs one launch from the command line. The CUDA impls take a backend (impls/_cuda_base.py):
here it is EmuBackend, which runs every launch of an op through that program. So these tests check
the kernels' indexing, bounds and tiling, and the impls' launch geometry and argument types,
on odd shapes that are not multiples of any tile, against the float64 reference.

Two builds: AddressSanitizer + UBSan (any read or write out of bounds, any undefined
arithmetic fails the launch) for the correctness tests, ThreadSanitizer for the kernels that
share memory through barriers, warps or atomics. Deliberately broken copies of the kernels
(a barrier, a bounds check or an atomic taken from the real source) show that each
sanitizer catches what it is for.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import zlib
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest

from harness.contract import OPS
from harness.execute import grid
from harness.execute.check import check
from harness.measure.gate import rel_err
from harness.reference import Reference
from impls._cuda_base import KERNELS, kernel_names
from impls._cuda_warptile import DEFAULT, GRID
from impls.cuda_cublas import CudaCublas
from impls.cuda_naive import CudaNaive
from impls.cuda_tiled import CudaTiled
from impls.cuda_uncoalesced import CudaUncoalesced
from tests import op_cases

EMU = Path(__file__).resolve().parent / "cuda_emu"
SELFTEST = EMU / "warp_selftest.cu"  # the warp primitives' own test kernels
CXX = shutil.which(os.environ.get("CXX", "g++"))
FLAGS = [
    "-std=c++20",
    "-O1",
    "-g",
    "-pthread",
    "-Wall",
    "-Werror",
    "-Wno-unknown-pragmas",
    "-fno-omit-frame-pointer",
]
SANITIZERS = {
    "address": ["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined"],
    "thread": ["-fsanitize=thread"],
}
ENV = {
    **os.environ,
    "ASAN_OPTIONS": "detect_leaks=1",
    "TSAN_OPTIONS": "halt_on_error=1",
    "UBSAN_OPTIONS": "print_stacktrace=1",
}
TOL = 1e-5  # float32 against float64, sums of at most a few hundred terms
pytestmark = pytest.mark.skipif(CXX is None, reason="no host C++ compiler (g++) to emulate on")


class EmuError(RuntimeError):
    """A launch the emulation refused, or that a sanitizer stopped: its report is the text."""


def start_build(out: Path, sanitizer: str, sources, defines=()):
    """Start compiling the emulator for these kernel sources (.cu paths) with one sanitizer
    and these -D options (05_warptile.cu's tiles); finish_build waits for it. Two builds at
    once use both cores of a CI machine."""
    names = [name for path in sources for name in kernel_names(Path(path).read_text())]
    unit = out.with_suffix(".cpp")
    table = ", ".join(f"EMU_KERNEL({n})" for n in names)
    unit.write_text(
        "\n".join(
            [
                f'#include "{EMU / "cuda_emu.h"}"',
                *(f'#include "{path}"' for path in sources),
                f'#include "{EMU / "driver.h"}"',
                "int main(int argc, char** argv) {",
                f"  return dispatch(argc, argv, {{{table}}});",
                "}",
                "",
            ]
        )
    )
    command = [CXX, *FLAGS, *SANITIZERS[sanitizer], *defines, str(unit), "-o", str(out)]
    return subprocess.Popen(command, stderr=subprocess.PIPE, text=True), command, out


def finish_build(started) -> list:
    """-> the command that runs the emulator: its path, behind `setarch -R` where needed."""
    process, command, out = started
    _, stderr = process.communicate()
    if process.returncode:
        if "cannot find" in stderr and "san" in stderr:  # the sanitizer runtime is missing
            pytest.skip(f"{CXX} has no runtime for {command[len(FLAGS) + 1]}: {stderr[-300:]}")
        raise AssertionError(f"emulation build failed:\n{' '.join(command)}\n{stderr}")
    # ThreadSanitizer wants its fixed memory layout, which some kernels' address-space
    # randomization breaks ("unexpected memory mapping"): then run it with ASLR off.
    for prefix in ([], ["setarch", platform.machine(), "-R"]):
        probe = subprocess.run([*prefix, str(out)], capture_output=True, text=True, env=ENV)
        if "usage: emu" in probe.stderr:
            return [*prefix, str(out)]
    pytest.skip(f"the {out.name} emulator cannot start here: {probe.stderr[-300:]}")


class EmuBackend:
    """CupyBackend's interface on NumPy arrays: each launch is one run of the emulator."""

    xp = np
    multiprocessors = 1  # so that the tiled impl's default choice takes rungs 03 and 04

    def __init__(self, command: list, workdir: Path):
        self.command, self.workdir = command, workdir
        self.launched = []

    def launch(self, kernel, grid, block, args):
        grid, block = (*grid, 1, 1)[:3], (*block, 1, 1)[:3]
        argv = [*self.command, kernel, *map(str, grid), *map(str, block)]
        buffers = []
        for i, arg in enumerate(args):
            if isinstance(arg, np.ndarray):
                if not arg.flags.c_contiguous or arg.dtype not in (np.float32, np.int64):
                    raise TypeError(
                        f"{kernel}: argument {i} is {arg.dtype} with strides "
                        f"{arg.strides}: kernels read contiguous float32 / int64"
                    )
                path = self.workdir / f"{i}.bin"
                arg.tofile(path)
                argv.append(f"{'f32' if arg.dtype == np.float32 else 'i64'}*:{path}")
                buffers.append((arg, path))
            elif type(arg) is np.int32:
                argv.append(f"i32:{int(arg)}")
            elif type(arg) is np.float32:
                argv.append(f"f32:{float(arg).hex()}")
            else:  # CuPy would pass a Python int as 64 bits, a float as a double
                raise TypeError(
                    f"{kernel}: argument {i} is {type(arg).__name__} {arg!r}; "
                    f"pass numpy.int32 or numpy.float32 as the C parameter is"
                )
        done = subprocess.run(argv, capture_output=True, text=True, env=ENV, timeout=300)
        if done.returncode or "Sanitizer" in done.stderr:
            raise EmuError(
                f"{kernel} grid {grid} block {block} exited {done.returncode}:\n"
                f"{done.stderr[-6000:]}"
            )
        for array, path in buffers:
            array[...] = np.fromfile(path, dtype=array.dtype).reshape(array.shape)
        self.launched.append(kernel)

    def empty(self, shape, dtype=np.float32):
        return np.full(shape, np.nan, dtype=dtype)  # an output a kernel never writes stays NaN

    def to_device(self, x_np):
        return np.array(x_np)

    def to_host(self, x):
        return np.array(x)

    def address(self, x):
        return x.ctypes.data

    def sync(self):
        pass

    def peak_bytes(self, fn):
        return 0  # no device here, and nothing to measure: spares the runner a second call


ALL_SOURCES = sorted(KERNELS.glob("*.cu"))


@pytest.fixture(scope="module")
def emulators(tmp_path_factory):
    folder = tmp_path_factory.mktemp("emu")
    sources = [*ALL_SOURCES, SELFTEST]
    started = {s: start_build(folder / f"emu_{s}", s, sources) for s in SANITIZERS}
    return {s: finish_build(build) for s, build in started.items()}


def make(cls, command, tmp_path, **kwargs):
    return cls(backend=EmuBackend(command, tmp_path), **kwargs)


def assert_close(impl, outputs, references, what):
    outputs = [o if isinstance(o, float) else impl.get(o) for o in outputs]
    err = rel_err(outputs, references)
    assert err <= TOL, f"{what}: rel err {err:.3g} > {TOL}"


def host(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


# ---- products, every rung, odd shapes -------------------------------------------------------

RUNGS = [
    (CudaUncoalesced, {}),
    (CudaNaive, {}),
    (CudaTiled, {"kernel": "tiled"}),
    (CudaTiled, {"kernel": "blocktile"}),
    (CudaCublas, {}),
]
# (M, K, N): inside one tile, and across tile edges (16-tiles for naive and tiled); rungs 03
# and cuBLAS also take more than one 128-tile in M and N.
PRODUCT_SHAPES = [(1, 1, 1), (37, 45, 29)]
BIG_TILE_SHAPES = [(130, 19, 133)]


@pytest.mark.parametrize(
    "cls, kwargs", RUNGS, ids=["uncoalesced", "naive", "tiled", "blocktile", "cublas"]
)
def test_products_match_reference(emulators, tmp_path, cls, kwargs):
    ops, ref, rng = (
        make(cls, emulators["address"], tmp_path, **kwargs),
        Reference(),
        np.random.default_rng(7),
    )
    big = kwargs.get("kernel") == "blocktile" or cls is CudaCublas
    for M, K, N in PRODUCT_SHAPES + (BIG_TILE_SHAPES if big else []):
        a_MK, b_KN, dc_MN = host(rng, M, K), host(rng, K, N), host(rng, M, N)
        a, b, dc = (ops.put(x, "activation") for x in (a_MK, b_KN, dc_MN))
        assert_close(ops, [ops.matmul(a, b)], [ref.matmul(a_MK, b_KN)], f"matmul {M, K, N}")
        assert_close(
            ops,
            ops.matmul_bwd(a, b, dc),
            ref.matmul_bwd(a_MK, b_KN, dc_MN),
            f"matmul_bwd {M, K, N}",
        )
    X, M, K, N = 3, 17, 9, 21
    a_XMK, b_XKN, dc_XMN = host(rng, X, M, K), host(rng, X, K, N), host(rng, X, M, N)
    a, b, dc = (ops.put(x, "activation") for x in (a_XMK, b_XKN, dc_XMN))
    assert_close(ops, [ops.bmm(a, b)], [ref.bmm(a_XMK, b_XKN)], "bmm")
    assert_close(ops, ops.bmm_bwd(a, b, dc), ref.bmm_bwd(a_XMK, b_XKN, dc_XMN), "bmm_bwd")


@pytest.mark.parametrize("kernel", ["vectorized", "warptile"])
def test_float4_rungs_match_reference_and_refuse_what_they_cannot_read(emulators, tmp_path, kernel):
    ops, ref, rng = (
        make(CudaTiled, emulators["address"], tmp_path, kernel=kernel),
        Reference(),
        np.random.default_rng(8),
    )
    # Partial tiles in M, N and K; two 128-tiles in M and N; a batch; K below one float4 slab.
    for X, M, K, N in [(1, 37, 44, 52), (1, 131, 20, 132), (2, 5, 4, 8)]:
        a_XMK, b_XKN = host(rng, X, M, K), host(rng, X, K, N)
        c = ops.bmm(ops.put(a_XMK, "activation"), ops.put(b_XKN, "weight"))
        assert_close(ops, [c], [ref.bmm(a_XMK, b_XKN)], f"{kernel} {X, M, K, N}")
    assert set(ops.backend.launched) == {f"matmul_{kernel}"}
    a = ops.put(host(rng, 8, 6), "activation")
    with pytest.raises(ValueError, match="K and N multiples of 4"):
        ops.matmul(a, ops.put(host(rng, 6, 8), "weight"))


# Two of the sweep's tiles besides the default, each built alone with its -D options: 256
# threads of 4 x 16 outputs (warps of 32 rows), and 8-wide thread tiles in 2 sub-tiles.
OTHER_TILES = [GRID[2], GRID[5]]


@pytest.fixture(scope="module")
def warptile_emulators(tmp_path_factory):
    folder, source = tmp_path_factory.mktemp("warptile"), [KERNELS / "05_warptile.cu"]
    started = {
        (tiles, s): start_build(folder / f"emu_{i}_{s}", s, source, tiles.defines)
        for i, tiles in enumerate(OTHER_TILES)
        for s in SANITIZERS
    }
    return {key: finish_build(build) for key, build in started.items()}


@pytest.mark.parametrize("tiles", OTHER_TILES, ids=lambda tiles: tiles.label)
def test_other_warptile_tiles_match_reference_and_are_race_free(
    warptile_emulators, tmp_path, tiles
):
    assert tiles != DEFAULT and tiles in GRID
    rng, ref = np.random.default_rng(10), Reference()
    # Partial tiles in M, N and K; more than one tile in M and N; a batch; one float4 of K;
    # N = 52: an 8-wide thread tile whose second float4 is past the edge.
    ops = make(
        CudaTiled, warptile_emulators[tiles, "address"], tmp_path, kernel="warptile", warptile=tiles
    )
    for X, M, K, N in [(1, 37, 44, 52), (1, 131, 20, 260), (2, 5, 4, 8)]:
        a_XMK, b_XKN = host(rng, X, M, K), host(rng, X, K, N)
        c = ops.bmm(ops.put(a_XMK, "activation"), ops.put(b_XKN, "weight"))
        assert_close(ops, [c], [ref.bmm(a_XMK, b_XKN)], f"{tiles.label} {X, M, K, N}")
    ops = make(
        CudaTiled, warptile_emulators[tiles, "thread"], tmp_path, kernel="warptile", warptile=tiles
    )
    ops.matmul(ops.put(host(rng, 37, 44), "activation"), ops.put(host(rng, 44, 36), "weight"))
    assert ops.backend.launched == ["matmul_warptile"]  # EmuError above on a race


def test_tiled_default_picks_warptile_where_it_can(emulators, tmp_path):
    ops = make(CudaTiled, emulators["address"], tmp_path)
    rng = np.random.default_rng(9)
    a, b, dc = (ops.put(host(rng, *s), "activation") for s in ((9, 8), (8, 12), (9, 12)))
    ops.matmul_bwd(a, b, dc)
    ops.matmul(a, b)
    assert ops.backend.launched == ["matmul_blocktile", "matmul_blocktile", "matmul_warptile"]


# ---- the network kernels --------------------------------------------------------------------


def test_network_ops_match_reference(emulators, tmp_path):
    ops, ref, rng = (
        make(CudaTiled, emulators["address"], tmp_path),
        Reference(),
        np.random.default_rng(3),
    )
    # 37 rows: colsum strides over them 8 at a time; 300 columns: two elementwise blocks and
    # ten colsum blocks, the last one partly empty.
    x_BI, w_IO, b_O, dy_BO = host(rng, 37, 5), host(rng, 5, 300), host(rng, 300), host(rng, 37, 300)
    x, w, bias, dy = (ops.put(v, "activation") for v in (x_BI, w_IO, b_O, dy_BO))
    assert_close(ops, [ops.linear(x, w, bias)], [ref.linear(x_BI, w_IO, b_O)], "linear")
    assert_close(ops, ops.linear_bwd(x, w, dy), ref.linear_bwd(x_BI, w_IO, dy_BO), "linear_bwd")
    y_BO = host(rng, 37, 300)
    y = ops.put(y_BO, "activation")
    assert_close(ops, [ops.add(y, dy)], [ref.add(y_BO, dy_BO)], "add")
    assert_close(ops, [ops.relu(y)], [ref.relu(y_BO)], "relu")
    assert_close(ops, [ops.relu_bwd(y, dy)], [ref.relu_bwd(y_BO, dy_BO)], "relu_bwd")

    # S = 150 > 128 threads a row: each thread takes two columns; T < S and T = S, causal.
    for X, T, S in [(3, 5, 150), (2, 7, 7)]:
        x_XTS, dy_XTS = host(rng, X, T, S), host(rng, X, T, S)
        for causal in (False, True):
            y_ref = ref.softmax(x_XTS, causal=causal, scale=0.3)
            y = ops.softmax(ops.put(x_XTS, "activation"), causal=causal, scale=0.3)
            assert_close(ops, [y], [y_ref], f"softmax {X, T, S} causal={causal}")
            assert_close(
                ops,
                [ops.softmax_bwd(y, ops.put(dy_XTS, "activation"), scale=0.3)],
                [ref.softmax_bwd(y_ref, dy_XTS, scale=0.3)],
                f"softmax_bwd {X, T, S}",
            )

    for B, C in [(9, 11), (4, 200)]:
        logits_BC, labels_B = host(rng, B, C) * 3, rng.integers(0, C, B)
        labels = ops.put(labels_B, "label")
        loss, probs = ops.softmax_xent(ops.put(logits_BC, "activation"), labels)
        ref_loss, ref_probs = ref.softmax_xent(logits_BC.astype(np.float64), labels_B)
        assert_close(ops, [loss, probs], [ref_loss, ref_probs], f"softmax_xent {B, C}")
        assert_close(
            ops,
            [ops.softmax_xent_bwd(probs, labels)],
            [ref.softmax_xent_bwd(ref_probs, labels_B)],
            f"softmax_xent_bwd {B, C}",
        )


def test_xent_turns_a_label_out_of_range_into_nan_not_a_wild_read(emulators, tmp_path):
    ops = make(CudaTiled, emulators["address"], tmp_path)
    labels = ops.put(np.array([0, 4, -1]), "label")  # C = 4: only the first is a class
    loss, probs = ops.softmax_xent(ops.put(np.zeros((3, 4), np.float32), "activation"), labels)
    assert np.isnan(loss)
    dlogits_BC = ops.get(ops.softmax_xent_bwd(probs, labels))
    assert np.isfinite(dlogits_BC[0]).all() and np.isnan(dlogits_BC[1:]).all()


def test_optimizer_updates_match_reference(emulators, tmp_path):
    ops, ref, rng = (
        make(CudaTiled, emulators["address"], tmp_path),
        Reference(),
        np.random.default_rng(4),
    )
    p_IO, g_IO, m_IO = host(rng, 7, 41), host(rng, 7, 41), host(rng, 7, 41) * 0.1
    v_IO = np.abs(host(rng, 7, 41)) * 0.1
    ref_state = [x.astype(np.float64) for x in (p_IO, m_IO, v_IO)]
    state = [ops.put(x, "weight") for x in (p_IO, m_IO, v_IO)]
    g = ops.put(g_IO, "weight")
    ops.sgd(state[0], g, lr=0.1)
    ref.sgd(ref_state[0], g_IO, lr=0.1)
    ops.momentum(state[0], g, state[1], lr=0.05, mu=0.9)
    ref.momentum(ref_state[0], g_IO, ref_state[1], lr=0.05, mu=0.9)
    for t in (1, 2, 3):
        ops.adam(*state[:1], g, *state[1:], t=t, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8)
        ref.adam(
            *ref_state[:1], g_IO, *ref_state[1:], t=t, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8
        )
    assert_close(ops, state, ref_state, "sgd, momentum, adam")


def test_head_layout_round_trips(emulators, tmp_path):
    ops, ref, rng = (
        make(CudaTiled, emulators["address"], tmp_path),
        Reference(),
        np.random.default_rng(5),
    )
    x_RD = host(rng, 2 * 5, 3 * 4)  # B=2, T=5, G=3, E=4
    x = ops.put(x_RD, "activation")
    for transpose in (False, True):
        heads = ops.split_heads(x, 2, 3, transpose=transpose)
        assert_close(
            ops,
            [heads],
            [ref.split_heads(x_RD, 2, 3, transpose=transpose)],
            f"split_heads transpose={transpose}",
        )
        assert_close(
            ops,
            [ops.merge_heads(heads, 2, 3, transposed=transpose)],
            [x_RD],
            f"merge_heads transposed={transpose}",
        )


# ---- the CNN's and the transformer's ops: op_cases' inputs on odd shapes -------------------

# (M, K, N) triples of op_cases: rows of 13 and 37 (layernorm's blocks of 4 rows end part
# full), 33 and 29 columns (a warp's lanes take two columns, some one), 429 and 1073 entries
# (elementwise blocks of 256 end part full; the squared error has 2 and 5 partial sums),
# 37 x 45 (transpose's 32 x 32 tiles cut in both), images of odd and even sides.
ODD_SHAPES = [(13, 5, 33), (37, 45, 29)]
# The ops every rung runs on the same kernels (nn.cu, conv.cu's pool, ops.cu's add and relu,
# now on any shape, and the layouts): one rung suffices. The conv's product is the rung's.
SHARED_OPS = [
    *op_cases.ELEMENTWISE,
    "layernorm",
    "layernorm_bwd",
    "transpose",
    "flatten",
    "unflatten",
    "embedding",
    "embedding_bwd",
    "maxpool2d",
    "maxpool2d_bwd",
]
CONV_OPS = ["conv2d", "conv2d_bwd"]


def check_cases(ops, op, shapes):
    """op_cases' cases of op at these shapes, through ops and the reference."""
    for shape in shapes:
        rng = np.random.default_rng(zlib.crc32(repr((op, shape)).encode()))
        for case in op_cases.make(op, rng, shape):
            expected = op_cases.run(Reference(), op, case)
            got = op_cases.run(ops, op, case)
            assert [g.shape for g in got] == [e.shape for e in expected], (op, shape)
            err = rel_err(got, expected)
            assert err <= TOL, f"{op} at {shape} {case.steps[0]}: rel err {err:.3g} > {TOL}"


def test_every_op_is_tested_on_the_emulation():
    products = {"matmul", "matmul_bwd", "bmm", "bmm_bwd", "linear", "linear_bwd"}
    earlier = {"softmax", "softmax_bwd", "softmax_xent", "softmax_xent_bwd"}
    updates, heads = set(op_cases.STEPS), {"split_heads", "merge_heads"}
    assert set(OPS) == products | earlier | updates | heads | set(SHARED_OPS) | set(CONV_OPS)


@pytest.mark.parametrize("op", SHARED_OPS)
def test_network_op_matches_reference_on_odd_shapes(emulators, tmp_path, op):
    check_cases(make(CudaTiled, emulators["address"], tmp_path), op, ODD_SHAPES)


@pytest.mark.parametrize("op", CONV_OPS)
@pytest.mark.parametrize("cls", [CudaNaive, CudaTiled, CudaCublas], ids=lambda c: c.name)
def test_conv_matches_reference_on_each_rungs_product(emulators, tmp_path, cls, op):
    ops = make(cls, emulators["address"], tmp_path)
    check_cases(ops, op, ODD_SHAPES[:1])
    # the rung's own product between im2col and col2im
    product = {CudaNaive: {"matmul_naive"}, CudaTiled: {"matmul_blocktile", "matmul_warptile"}}
    assert {k for k in ops.backend.launched if k.startswith("matmul")} <= product.get(cls, set())
    assert {"im2col", "conv_out" if op == "conv2d" else "col2im"} <= set(ops.backend.launched)


def test_embedding_turns_a_token_out_of_range_into_nan_and_its_backward_skips_it(
    emulators, tmp_path
):
    ops = make(CudaTiled, emulators["address"], tmp_path)
    tokens_R = ops.put(np.array([1, 3, -1]), "label")  # V = 3: only the first is a row
    w_VD = np.arange(6, dtype=np.float32).reshape(3, 2)
    x_RD = ops.get(ops.embedding(tokens_R, ops.put(w_VD, "weight")))
    assert (x_RD[0] == w_VD[1]).all() and np.isnan(x_RD[1:]).all()
    dx_RD = ops.put(np.ones((3, 2), np.float32), "activation")
    dw_VD = ops.get(ops.embedding_bwd(ops.put(w_VD, "weight"), tokens_R, dx_RD))
    assert (dw_VD == [[0, 0], [1, 1], [0, 0]]).all()


def test_the_pools_tie_goes_to_the_first_max_in_row_major_order(emulators, tmp_path):
    ops = make(CudaTiled, emulators["address"], tmp_path)
    # One 2 x 2 window, 2 twice in it; the odd last row and column are in no window.
    x_BQYZ = np.array([[[[1, 2, 5], [2, 0, 5], [9, 9, 9]]]], np.float32)
    dy_BQUW = ops.put(np.ones((1, 1, 1, 1), np.float32), "activation")
    dx_BQYZ = ops.get(ops.maxpool2d_bwd(ops.put(x_BQYZ, "activation"), dy_BQUW))
    assert (dx_BQYZ[0, 0] == [[0, 1, 0], [0, 0, 0], [0, 0, 0]]).all()


# ---- the warp primitives of the emulation --------------------------------------------------


@pytest.mark.parametrize("sanitizer", list(SANITIZERS))
def test_warp_shuffles_syncwarp_and_atomics_do_what_cuda_defines(emulators, tmp_path, sanitizer):
    backend = EmuBackend(emulators[sanitizer], tmp_path)
    blocks, threads = 3, 64
    out_T4, count_1 = np.zeros((blocks * threads, 4), np.float32), np.zeros(1, np.float32)
    backend.launch("warp_selftest", (blocks,), (threads,), (out_T4, count_1))
    t = np.tile(np.arange(threads), blocks)
    lane, warp_start = t % 32, t - t % 32
    np.testing.assert_array_equal(out_T4[:, 0], warp_start + (lane ^ 5))
    np.testing.assert_array_equal(out_T4[:, 1], np.where(lane + 3 < 32, t + 3, t))
    np.testing.assert_array_equal(out_T4[:, 2], 10 * (t ^ 1))
    np.testing.assert_array_equal(np.sort(out_T4[:, 3]), np.arange(blocks * threads))
    assert count_1[0] == blocks * threads


def test_the_emulation_refuses_partial_warps_and_divergent_shuffles(
    emulators, tmp_path, monkeypatch
):
    backend = EmuBackend(emulators["address"], tmp_path)
    out = np.zeros((48, 4), np.float32)
    with pytest.raises(EmuError, match="only whole warps"):
        backend.launch("warp_selftest", (1,), (48,), (out, np.zeros(1, np.float32)))
    monkeypatch.setitem(ENV, "EMU_WARP_TIMEOUT_S", "1")
    with pytest.raises(EmuError, match="a divergent warp-level call"):
        backend.launch("warp_divergent", (1,), (32,), (np.zeros(32, np.float32),))


# ---- whole workloads through the runner's correctness gate ----------------------------------

# The workloads' own code (inputs, setup, models) at small odd sizes: every op composed.
# The rungs differ only in their product kernel, tested above: one rung suffices here. A
# backward's setup runs the forward, so "bwd" covers both.
SMALL_CELLS = [
    ("xor", {"B": 4, "layers": "2-4-2", "opt": "sgd"}, ("bwd", "step")),
    ("mnist_mlp", {"B": 6, "layers": "13-9-5", "opt": "adam"}, ("step",)),
    ("attention", {"B": 2, "T": 5, "D": 12, "G": 3}, ("bwd",)),
    # 5 steps from zero state: a float32 (1 - beta2) in the kernel fails the gate
    ("optim", {"I": 3, "O": 7, "opt": "adam", "steps": 5}, ("step",)),
    # 9 x 9 images: the pools drop an odd row and column (9 -> 4 -> 2)
    ("cnn", {"B": 2, "Y": 9, "channels": "2-3-4", "C": 5, "opt": "sgd"}, ("step",)),
    # bwd, not step: Adam's step turns the float32 noise of a gradient that is 0 by symmetry
    # into a step of lr, which fails the gate on every float32 rung (numpy and c as well)
    ("gpt", {"B": 2, "T": 5, "D": 12, "G": 3, "L": 1, "V": 7, "opt": "adam"}, ("bwd",)),
]


def test_workloads_pass_the_correctness_gate(emulators, tmp_path):
    ops = make(CudaTiled, emulators["address"], tmp_path)
    for workload, size, phases in SMALL_CELLS:
        for phase in phases:
            cell = grid.Cell(CudaTiled.name, workload, tuple(size.items()), phase)
            row, fn = check(ops, cell, budget=None)
            assert row["status"] == "ok", f"{workload} {phase}: {row['reason']}"
            assert fn is not None


# ---- ThreadSanitizer: the kernels that share memory through barriers ------------------------


def test_barrier_kernels_are_race_free(emulators, tmp_path):
    rng = np.random.default_rng(6)
    # K and N multiples of 4 (for rungs 04, 05), of no tile size: partial tiles everywhere.
    a_MK, b_KN = host(rng, 37, 44), host(rng, 44, 36)
    for kernel in ("tiled", "blocktile", "vectorized", "warptile"):
        ops = make(CudaTiled, emulators["thread"], tmp_path, kernel=kernel)
        ops.matmul(ops.put(a_MK, "activation"), ops.put(b_KN, "weight"))  # EmuError on a race
    ops = make(CudaUncoalesced, emulators["thread"], tmp_path)  # no shared memory: no barrier
    ops.matmul(ops.put(a_MK, "activation"), ops.put(b_KN, "weight"))
    ops = make(CudaTiled, emulators["thread"], tmp_path)
    y = ops.softmax(ops.put(host(rng, 2, 3, 150), "activation"), causal=True)
    ops.softmax_bwd(y, y)
    ops.softmax_xent(ops.put(host(rng, 3, 5), "activation"), ops.put(np.array([0, 4, 2]), "label"))
    assert ops.backend.launched == ["softmax_rows", "softmax_bwd_rows", "xent_rows", "colsum"]


def test_network_kernels_are_race_free(emulators, tmp_path):
    """The new kernels that share memory: warp sums meeting in shared memory (layernorm's
    column sums, the squared error's partial sums, the conv's bias gradient), transpose's
    tile, and the embedding's atomics with many rows of one token in a block."""
    ops, rng = make(CudaTiled, emulators["thread"], tmp_path), np.random.default_rng(11)
    x_RD, gamma_D = ops.put(host(rng, 19, 37), "activation"), ops.put(host(rng, 37), "weight")
    y_RD, mean_R, rstd_R = ops.layernorm(x_RD, gamma_D, gamma_D)
    ops.layernorm_bwd(x_RD, gamma_D, mean_R, rstd_R, y_RD)
    ops.mse(y_RD, x_RD)  # 703 entries: 3 partial sums
    ops.transpose(x_RD)
    tokens_R = ops.put(rng.integers(0, 3, 60), "label")
    ops.embedding_bwd(
        ops.put(host(rng, 3, 5), "weight"), tokens_R, ops.put(host(rng, 60, 5), "activation")
    )
    x_BQYZ, w_FQJL = (
        ops.put(host(rng, 2, 3, 7, 6), "activation"),
        ops.put(host(rng, 4, 3, 3, 3), "weight"),
    )
    ops.conv2d_bwd(
        x_BQYZ, w_FQJL, ops.put(host(rng, 2, 4, 4, 3), "activation"), stride=2, padding=1
    )
    assert {
        "layernorm_rows",
        "layernorm_bwd_rows",
        "layernorm_dparams",
        "sq_err_partials",
        "row_sums",
        "transpose",
        "embedding_bwd",
        "col2im",
    } <= set(ops.backend.launched)


# ---- broken copies: each sanitizer catches what it is there for -----------------------------


def _product(ops, rng):
    ops.matmul(ops.put(host(rng, 37, 45), "activation"), ops.put(host(rng, 45, 29), "weight"))


def _softmax(ops, rng):
    ops.softmax(ops.put(host(rng, 1, 2, 150), "activation"))


def _layernorm(ops, rng):  # 7 rows: the second block of 4 rows ends past them
    x_RD, gamma_D = ops.put(host(rng, 7, 33), "activation"), ops.put(host(rng, 33), "weight")
    y_RD, mean_R, rstd_R = ops.layernorm(x_RD, gamma_D, gamma_D)
    ops.layernorm_bwd(x_RD, gamma_D, mean_R, rstd_R, y_RD)


def _mse(ops, rng):
    ops.mse(ops.put(host(rng, 300), "activation"), ops.put(host(rng, 300), "activation"))


def _embedding_bwd(ops, rng):  # 60 rows of 3 tokens: a block holds many rows of each
    tokens_R = ops.put(rng.integers(0, 3, 60), "label")
    ops.embedding_bwd(
        ops.put(host(rng, 3, 5), "weight"), tokens_R, ops.put(host(rng, 60, 5), "activation")
    )


def _conv(ops, rng):  # padding 1: windows at the edge hang over it
    x_BQYZ, w_FQJL = (
        ops.put(host(rng, 1, 2, 5, 6), "activation"),
        ops.put(host(rng, 3, 2, 3, 3), "weight"),
    )
    ops.conv2d(x_BQYZ, w_FQJL, ops.put(host(rng, 3), "bias"), stride=1, padding=1)


def _warp_selftest(ops, rng):
    out_T4, count_1 = np.zeros((64, 4), np.float32), np.zeros(1, np.float32)
    ops.backend.launch("warp_selftest", (1,), (64,), (out_T4, count_1))


class Breakage(NamedTuple):
    """A copy of `source` with `text` (there once) replaced, which `sanitizer` must stop in
    the launch of `kernel` when `exercise(ops, rng)` runs on the rung `rung`."""

    source: Path
    text: str
    replacement: str
    sanitizer: str
    kernel: str
    exercise: object
    rung: tuple = (CudaTiled, {"kernel": "tiled"})


REPORTS = {
    "thread": "ThreadSanitizer: data race",
    "address": "AddressSanitizer: heap-buffer-overflow",
}
BREAKAGES = {
    "tile barrier": Breakage(
        KERNELS / "02_tiled.cu",
        "__syncthreads();  // everyone is done reading",
        "//",
        "thread",
        "matmul_tiled",
        _product,
    ),
    "reduction barrier": Breakage(
        KERNELS / "ops.cu",
        "__syncthreads();  // every thread's value is in",
        "//",
        "thread",
        "softmax_rows",
        _softmax,
    ),
    "layernorm column-sum barrier": Breakage(
        KERNELS / "nn.cu",
        "__syncthreads();  // all partial sums are in before row 0 adds them up",
        "//",
        "thread",
        "layernorm_dparams",
        _layernorm,
    ),
    "warp sums barrier": Breakage(
        KERNELS / "nn.cu",
        "__syncthreads();  // every warp's sum is in before warp 0 reads them",
        "//",
        "thread",
        "sq_err_partials",
        _mse,
    ),
    "embedding atomics": Breakage(
        KERNELS / "nn.cu",
        "atomicAdd(&dw[token * D + i % D], dx[i]);",
        "dw[token * D + i % D] += dx[i];",
        "thread",
        "embedding_bwd",
        _embedding_bwd,
    ),
    "syncwarp": Breakage(
        SELFTEST,
        "__syncwarp();  // the warp's offers are in",
        "//",
        "thread",
        "warp_selftest",
        _warp_selftest,
    ),
    "tile load bound": Breakage(
        KERNELS / "02_tiled.cu",
        "(m < M && ka < K) ?",
        "(m < M) ?",
        "address",
        "matmul_tiled",
        _product,
    ),
    "edge thread guard": Breakage(
        KERNELS / "01_naive.cu",
        "if (m >= M || n >= N) return;",
        "",
        "address",
        "matmul_naive",
        _product,
        (CudaNaive, {}),
    ),
    "layernorm row guard": Breakage(
        KERNELS / "nn.cu",
        "if (r >= R) return;  // the whole warp: its row is past the end",
        "",
        "address",
        "layernorm_rows",
        _layernorm,
    ),
    "im2col padding bound": Breakage(
        KERNELS / "conv.cu",
        "(y >= 0 && y < Y && z >= 0 && z < Z) ?",
        "true ?",
        "address",
        "im2col",
        _conv,
    ),
}


@pytest.fixture(scope="module")
def broken_emulators(tmp_path_factory):
    """One emulator per sanitizer, built from copies of the sources with every breakage that
    sanitizer must catch (a file broken twice is one copy with both breakages)."""
    folder = tmp_path_factory.mktemp("broken")
    copies = {}  # (sanitizer, source) -> its broken text
    for broken in BREAKAGES.values():
        original = broken.source.read_text()
        assert original.count(broken.text) == 1, (
            f"{broken.source.name} no longer has {broken.text!r} once: update the test"
        )
        key = (broken.sanitizer, broken.source)
        copies[key] = copies.get(key, original).replace(broken.text, broken.replacement)
    sources = {}
    for (sanitizer, source), text in copies.items():
        path = folder / sanitizer / source.name
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
        sources.setdefault(sanitizer, []).append(path)
    started = {s: start_build(folder / f"emu_{s}", s, paths) for s, paths in sources.items()}
    return {s: finish_build(build) for s, build in started.items()}


@pytest.mark.parametrize("breakage", list(BREAKAGES))
def test_sanitizers_catch_broken_copies(broken_emulators, tmp_path, breakage):
    broken = BREAKAGES[breakage]
    cls, kwargs = broken.rung
    ops = make(cls, broken_emulators[broken.sanitizer], tmp_path, **kwargs)
    with pytest.raises(EmuError, match=REPORTS[broken.sanitizer]) as caught:
        broken.exercise(ops, np.random.default_rng(1))
    assert str(caught.value).startswith(f"{broken.kernel} grid"), "another launch was stopped"
