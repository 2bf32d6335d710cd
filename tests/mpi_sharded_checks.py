"""Sharded-rung checks that need real ranks: `mpiexec -n P python tests/mpi_sharded_checks.py`.

Run by tests/test_sharded.py for P = 1..4 (one MPI job per P, since each start costs about a
second). Every rank runs every check; a failed assert on any rank aborts the job with that
rank's traceback (harness.execute.mpi.abort_on_uncaught), so the test sees a non-zero exit.
Rank 0 prints one line, `sharded checks ok: ...`, when all passed.

Sizes are chosen so that no split dimension is divisible by 3 or 4 (uneven blocks) and none
is below 4 (P = 4 must be able to split them).
"""

from __future__ import annotations

import itertools
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness import models, registry
from harness.execute import grid, lifecycle
from harness.execute import mpi as distributed
from harness.measure.gate import rel_err  # noqa: E402
from harness.reference import Reference
from harness.workloads import get_workload
from harness.workloads.transformer import _gpt_inputs, block_arrays
from impls._collectives import bus_bytes
from impls._shards import OVERLAP_SLABS, Shard

TOL = 1e-5  # the bound on forward outputs and every gradient
distributed.abort_on_uncaught()
numpy_impl = registry.create("numpy")
reference = Reference()
col, row, mlp = (registry.create(n) for n in ("sharded-col", "sharded-row", "sharded-mlp"))
# The same layouts over the hand-written rings, and overlapped (impls/sharded.py).
rings = [registry.create(f"{n}-ring") for n in ("sharded-col", "sharded-row", "sharded-mlp")]
col_ring, mlp_ring = rings[0], rings[2]
col_overlap, mlp_overlap = (registry.create(f"{n}-overlap") for n in ("sharded-col", "sharded-mlp"))
dp = registry.create("data-parallel")  # the batch split, gradients all-reduced
# The base is swappable: sharded-mlp over the C rung's blocked GEMM too, where it is built.
over_c = (
    None
    if registry.unavailable_reason("c-blocked")
    else registry.get_class("sharded-mlp")(base=registry.create("c-blocked"))
)
P, RANK = col.ranks, col.rank
done = []


def normal(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


def assert_close(what, impl, outputs, expected):
    err = rel_err([impl.get(o) for o in outputs], [numpy_impl.get(e) for e in expected])
    assert err <= TOL, f"{impl.name} P={P} {what}: rel err {err:.3g} > {TOL:g}"
    done.append(what)


def check_products():
    """linear and matmul, forward and backward, against the unsharded NumPy rung (sharded-mlp
    runs a lone product column-parallel)."""
    rng = np.random.default_rng(7)
    for B, n_in, n_out in ((5, 7, 9), (3, 13, 6), (8, 4, 5)):
        host = {
            "x_BI": (normal(rng, B, n_in), "activation"),
            "w_IO": (normal(rng, n_in, n_out), "weight"),
            "b_O": (normal(rng, n_out), "bias"),
            "dy_BO": (normal(rng, B, n_out), "activation"),
        }
        expected = {k: numpy_impl.put(x, r) for k, (x, r) in host.items()}
        for impl in (col, row, mlp, *rings, col_overlap, mlp_overlap):
            a = {k: impl.put(x, r) for k, (x, r) in host.items()}
            assert_close(
                f"linear {B}x{n_in}x{n_out}",
                impl,
                [impl.linear(a["x_BI"], a["w_IO"], a["b_O"])],
                [numpy_impl.linear(expected["x_BI"], expected["w_IO"], expected["b_O"])],
            )
            assert_close(
                f"linear_bwd {B}x{n_in}x{n_out}",
                impl,
                impl.linear_bwd(a["x_BI"], a["w_IO"], a["dy_BO"]),
                numpy_impl.linear_bwd(expected["x_BI"], expected["w_IO"], expected["dy_BO"]),
            )
            assert_close(
                f"matmul {B}x{n_in}x{n_out}",
                impl,
                [impl.matmul(a["x_BI"], a["w_IO"])],
                [numpy_impl.matmul(expected["x_BI"], expected["w_IO"])],
            )
            assert_close(
                f"matmul_bwd {B}x{n_in}x{n_out}",
                impl,
                impl.matmul_bwd(a["x_BI"], a["w_IO"], a["dy_BO"]),
                numpy_impl.matmul_bwd(expected["x_BI"], expected["w_IO"], expected["dy_BO"]),
            )
            # Each rank holds its block only: O_r columns (col) or I_r rows (row), <= 1 apart.
            by_column = not impl.name.startswith("sharded-row")
            lo, hi = np.array_split(np.arange(n_out if by_column else n_in), P)[RANK][[0, -1]]
            local = impl.get(a["w_IO"].local)
            assert local.shape == ((n_in, hi - lo + 1) if by_column else (hi - lo + 1, n_out)), (
                f"{impl.name} P={P}: rank {RANK} holds w_IO block {local.shape}"
            )


def check_mlps():
    """The MLP models (forward, every gradient, optimizer steps) on all three layouts."""
    rng = np.random.default_rng(8)
    for dims, opt in (("13-11-7-5", "adam"), ("9-6-4", "momentum"), ("6-5-4-4-7", "sgd")):
        widths = [int(d) for d in dims.split("-")]
        B = 6
        host = {
            "x_BI": (normal(rng, B, widths[0]), "activation"),
            "labels_B": (rng.integers(0, widths[-1], B), "label"),
        }
        for layer, (n_in, n_out) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
            host[f"w{layer}"] = (normal(rng, n_in, n_out) / np.float32(np.sqrt(n_in)), "weight")
            host[f"b{layer}"] = (normal(rng, n_out), "bias")
        results = {}
        for impl in (
            numpy_impl,
            col,
            row,
            mlp,
            mlp_ring,
            mlp_overlap,
            dp,
            *([over_c] if over_c else []),
        ):
            a = {k: impl.put(x, r) for k, (x, r) in host.items()}
            params = [a[k] for k in host if k[0] in "wb"]
            loss, probs_BC, cache = models.mlp_forward(impl, params, a["x_BI"], a["labels_B"])
            grads = models.mlp_backward(impl, params, cache, a["labels_B"])
            state = [
                [
                    impl.put(np.zeros_like(host[k][0]), host[k][1])
                    for _ in range(models.OPT_STATE[opt])
                ]
                for k in host
                if k[0] in "wb"
            ]
            for t in (1, 2):
                models.mlp_step(impl, params, a["x_BI"], a["labels_B"], opt, state, t)
            outputs = [np.float64(loss), probs_BC, *grads, *params]
            label = f"{impl.name} over {getattr(impl, 'base', impl).name}"
            results[label] = [o if isinstance(o, float) else impl.get(o) for o in outputs]
        expected = results.pop("numpy over numpy")
        for name, got in results.items():
            err = rel_err(got, expected)
            assert err <= TOL, f"{name} P={P} mlp {dims} {opt}: rel err {err:.3g} > {TOL:g}"
            done.append(f"{name} mlp {dims}")


def check_attention():
    """The attention block (its products sharded, split_heads and softmax in the base) on all
    three layouts, forward and every gradient: sharded-mlp's lone products included."""
    rng = np.random.default_rng(11)
    B, T, D, G = 2, 5, 10, 2  # D = 10: split by P = 2..4 unevenly, E = 5
    host = [
        (normal(rng, *shape), role)
        for _ in range(4)
        for shape, role in (((D, D), "weight"), ((D,), "bias"))
    ]
    x_RD, dy_RD = normal(rng, B * T, D), normal(rng, B * T, D)
    results = {}
    for impl in (numpy_impl, col, row, mlp):
        params = [impl.put(x, role) for x, role in host]
        x, dy = impl.put(x_RD, "activation"), impl.put(dy_RD, "activation")
        y, cache = models.attention_forward(impl, params, x, B, G, D)
        dx, grads = models.attention_backward(impl, params, cache, dy, B, G)
        results[impl.name] = [impl.get(o) for o in (y, dx, *grads)]
    expected = results.pop("numpy")
    for name, got in results.items():
        err = rel_err(got, expected)
        assert err <= TOL, f"{name} P={P} attention: rel err {err:.3g} > {TOL:g}"
        done.append(f"{name} attention")


def check_elementwise_on_shards():
    """The entry-by-entry ops on shards: block by block with no communication when all their
    arrays are split alike, a whole array beside a shard cut to this rank's block, a shard
    beside a whole first array gathered; mse and mse_bwd (a mean over every entry) on whole
    arrays. Every result against the float64 reference, on images (4-d) too."""
    rng = np.random.default_rng(12)
    inputs = {  # what each op reads: x, y (a sigmoid's output in (0, 1), a tanh's in (-1, 1))
        "add": "xx",
        "relu": "x",
        "relu_bwd": "xx",
        "gelu": "x",
        "gelu_bwd": "xx",
        "sigmoid": "x",
        "sigmoid_bwd": "sx",
        "tanh": "x",
        "tanh_bwd": "tx",
        "mse": "xx",
        "mse_bwd": "xx",
    }
    for shape in ((5, 7), (5, 3, 4, 7)):
        for op, reads in inputs.items():
            host = [
                {
                    "x": normal(rng, *shape),
                    "s": rng.uniform(0, 1, shape),
                    "t": rng.uniform(-1, 1, shape),
                }[r].astype(np.float32)
                for r in reads
            ]
            expected = getattr(reference, op)(*(reference.put(h, "activation") for h in host))
            for impl in (col, row):
                # dict.fromkeys, not a set: every rank must run the same calls in one order
                for roles in dict.fromkeys(
                    (
                        ("weight",) * len(host),
                        ("weight", "activation")[: len(host)],
                        ("activation", "weight")[: len(host)],
                    )
                ):
                    args = [impl.put(h, role) for h, role in zip(host, roles, strict=True)]
                    before = impl.traffic()["allgather_calls"]
                    got = getattr(impl, op)(*args)
                    gathers = impl.traffic()["allgather_calls"] - before
                    if op.startswith("mse"):  # on whole arrays: gathered first
                        assert not isinstance(got, Shard), (impl.name, op)
                    elif roles[0] == "weight":  # laid out as the first array, no gather
                        assert isinstance(got, Shard) and gathers == 0, (impl.name, op, roles)
                    got = got if isinstance(got, float) else impl.get(got)
                    err = rel_err([np.float64(got)], [np.float64(expected)])
                    assert err <= TOL, f"{impl.name} P={P} {op} {shape} {roles}: rel err {err:.3g}"
            done.append(f"{op} on shards {shape}")


# The block's sizes: heads P = 2..4 split unevenly (4 heads over 3, 5 over 2..4), and no axis
# under 4 (P = 4 must be able to split the placed weights).
BLOCK_SIZES = ({"B": 2, "T": 5, "D": 12, "G": 4}, {"B": 3, "T": 4, "D": 10, "G": 5})
# The block's params whose Adam step no float32 rung can match: bk_D's gradient is zero by
# symmetry (a key bias shifts a row's scores alike), so Adam's m / sqrt(v) is the sign of
# float32 noise, a full learning-rate step either way.
ADAM_UNMATCHABLE = {"bk_D"}


def _block_run(impl, host, x_RD, dy_RD, size):
    """Forward, backward and steps of the block on impl: {what: host arrays}, collectives."""
    B, G, D = size["B"], size["G"], size["D"]
    names = models.BLOCK_PARAMS
    params = [impl.put(*host[k]) for k in names]
    x, dy = impl.put(x_RD, "activation"), impl.put(dy_RD, "activation")
    models.block_forward(impl, params, x, B, G, D)  # the first call lays out the params
    before = impl.traffic()
    y, cache = models.block_forward(impl, params, x, B, G, D)
    after_fwd = impl.traffic()
    dx, grads = models.block_backward(impl, params, cache, dy, B, G)
    after_bwd = impl.traffic()
    out = {"fwd": [impl.get(y)], "bwd": [impl.get(g) for g in (dx, *grads)]}
    for opt in ("sgd", "momentum", "adam"):
        params = [impl.put(*host[k]) for k in names]
        state = [
            [impl.put(np.zeros_like(host[k][0]), host[k][1]) for _ in range(models.OPT_STATE[opt])]
            for k in names
        ]
        for t in (1, 2):
            models.block_step(impl, params, x, dy, B, G, D, opt, state, t)
        kept = [n not in ADAM_UNMATCHABLE or opt != "adam" for n in names]
        out[opt] = [impl.get(p) for p, keep in zip(params, kept, strict=True) if keep]
    counts = [
        {k: later[k] - earlier[k] for k in before if k.endswith(("_calls", "_bytes"))}
        for earlier, later in ((before, after_fwd), (after_fwd, after_bwd))
    ]
    return out, counts, params


def check_megatron_block():
    """sharded-mlp's transformer block (Megatron: attention split by whole heads, the MLP
    column -> row) against the float64 reference: its output, dx and every gradient, and the
    params after sgd, momentum and Adam steps; two all-reduces forward and two backward, no
    gather, with the ring's bytes (MPI's: the same formula); each rank holding whole heads
    and its H_r hidden features. Overlapped, the MLP half's all-reduce is one per slab of D."""
    rng = np.random.default_rng(13)
    for size, impl in itertools.product(BLOCK_SIZES, (mlp, mlp_ring, mlp_overlap)):
        R, D, G = size["B"] * size["T"], size["D"], size["G"]
        host = block_arrays(rng, D)
        x_RD, dy_RD = normal(rng, R, D), normal(rng, R, D)
        expected, *_ = _block_run(reference, host, x_RD, dy_RD, size)
        got, counts, params = _block_run(impl, host, x_RD, dy_RD, size)
        for what in expected:
            err = rel_err(got[what], expected[what])
            assert err <= TOL, f"{impl.name} P={P} block {size} {what}: rel err {err:.3g}"
        S = 4 * R * D  # bytes of one whole activation
        slabs = min(OVERLAP_SLABS, D) if impl is mlp_overlap else 1
        for phase, count in zip(("fwd", "bwd"), counts, strict=True):
            calls = (2 if phase == "fwd" else 1 + slabs) if P > 1 else 0
            assert count["allreduce_calls"] == calls, (impl.name, phase, count)
            assert count["allgather_calls"] == 0, (phase, count)
            sent = sum(col.comm.allgather(count["allreduce_bytes"]))
            assert math.isclose(sent, 2 * 2 * (P - 1) * S), f"P={P} {phase}: ranks sent {sent}"
        E, heads_r = D // G, np.array_split(np.arange(G), P)[RANK].size
        hidden_r = np.array_split(np.arange(4 * D), P)[RANK].size
        held = {n: impl.get(p.local).shape for n, p in zip(models.BLOCK_PARAMS, params)}
        assert held["wq_DD"] == held["wv_DD"] == (D, heads_r * E), held
        assert held["wo_DD"] == (heads_r * E, D) and held["bk_D"] == (heads_r * E,), held
        assert held["wfc_DH"] == (D, hidden_r) and held["wproj_HD"] == (hidden_r, D), held
        assert held["g1_D"] == held["bo_D"] == held["bproj_D"] == (D,), held
        done.append(f"{impl.name} block {size}")


def check_gpt():
    """The GPT (embeddings, two blocks, tied head) on all three layouts, its loss, every
    gradient and an sgd step against the float64 reference; on sharded-mlp its blocks run
    Megatron's (two all-reduces per block forward; backward two per block and one for the
    head's column-parallel product)."""
    size = {"B": 2, "T": 5, "D": 12, "G": 4, "L": 2, "V": 9, "opt": "sgd"}
    B, G, D, L = size["B"], size["G"], size["D"], size["L"]
    host = _gpt_inputs(size, np.random.default_rng(14))
    names = models.gpt_params(L)
    results = {}
    for impl in (reference, col, row, mlp):
        a = {k: impl.put(x, role) for k, (x, role) in host.items()}
        params, ids = [a[k] for k in names], (a["tokens_R"], a["positions_R"], a["labels_R"])
        models.gpt_forward(impl, params, *ids, B, G, D)  # lays out sharded-mlp's blocks
        before = impl.traffic()
        loss, cache = models.gpt_forward(impl, params, *ids, B, G, D)
        after_fwd = impl.traffic()
        grads = models.gpt_backward(impl, params, cache, ids[2], B, G)
        after_bwd = impl.traffic()
        if impl is mlp:
            calls = [later["allreduce_calls"] - before["allreduce_calls"] for later in (after_fwd,)]
            calls.append(after_bwd["allreduce_calls"] - after_fwd["allreduce_calls"])
            assert calls == ([2 * L, 2 * L + 1] if P > 1 else [0, 0]), f"P={P} gpt: {calls}"
        models.gpt_step(impl, params, *ids, B, G, D, "sgd", [[] for _ in names], 1)
        results[impl.name] = [np.float64(loss), *(impl.get(g) for g in (*grads, *params))]
    expected = results.pop("reference")
    for name, got in results.items():
        err = rel_err(got, expected)
        assert err <= TOL, f"{name} P={P} gpt: rel err {err:.3g} > {TOL:g}"
        done.append(f"{name} gpt")


def check_mlp_pairing():
    """sharded-mlp's collectives: per column -> row pair one all-reduce forward (after the
    row layer) and one backward (the column layer's input gradient, but for the first layer,
    whose input gradient the model drops); a last, unpaired column layer all-gathers its
    logits forward and all-reduces its input gradient backward."""
    rng = np.random.default_rng(9)
    for dims in ("9-6-4", "13-11-7-5", "6-5-4-4-7"):
        widths = [int(d) for d in dims.split("-")]
        n_layers, B = len(widths) - 1, 5
        x_BI = mlp.put(normal(rng, B, widths[0]), "activation")
        labels_B = mlp.put(rng.integers(0, widths[-1], B), "label")
        params = [
            mlp.put(x, role)
            for n_in, n_out in zip(widths[:-1], widths[1:], strict=True)
            for x, role in ((normal(rng, n_in, n_out), "weight"), (normal(rng, n_out), "bias"))
        ]
        models.mlp_forward(mlp, params, x_BI, labels_B)  # the first call reshards row layers
        *_, cache = models.mlp_forward(mlp, params, x_BI, labels_B)
        after_fwd = mlp.traffic()
        models.mlp_backward(mlp, params, cache, labels_B)
        after_bwd = mlp.traffic()
        models.mlp_forward(mlp, params, x_BI, labels_B)
        after_fwd_again = mlp.traffic()
        keys = ("allreduce_calls", "allgather_calls")
        counts = [
            {k: after_fwd_again[k] - after_bwd[k] for k in keys},
            {k: after_bwd[k] - after_fwd[k] for k in keys},
        ]
        n_col, n_row = (n_layers + 1) // 2, n_layers // 2
        expected = [
            {"allreduce_calls": n_row, "allgather_calls": n_layers % 2},
            {"allreduce_calls": n_col - 1, "allgather_calls": 0},
        ]
        assert counts == (expected if P > 1 else [dict.fromkeys(expected[0], 0)] * 2), (
            f"sharded-mlp P={P} {dims}: collectives (fwd, bwd) {counts}, expected {expected}"
        )
        done.append(f"sharded-mlp pairing {dims}")


def _sent(impl, name, run, *args):
    """run(*args) -> (its result, the bytes this rank counted for `name`, counter deltas)."""
    before = impl.traffic()
    out = run(*args)
    after = impl.traffic()
    counts = {k: after[k] - before[k] for k in after if k.startswith(f"{name}_")}
    return out, counts[f"{name}_bytes"], counts


def check_ring_bytes():
    """The rings' byte counters equal the analytic formulas exactly: per rank what each step
    sends, and their mean over ranks nccl-tests' bus bytes (2(P-1)/P * S for an all-reduce,
    (P-1)/P * S for an all-gather or a reduce-scatter), which is what MPI's own are counted."""
    ring = col_ring.collectives
    for n in (4 * 5 * 7, 4 * 5 * 7 + 1, 3, 1):  # divisible by 1..4, then not, then n < P
        S = 4 * n  # bytes of the whole float32 tensor
        sizes = [len(b) for b in np.array_split(np.arange(n), P)]
        x_flat = np.arange(n, dtype=np.float32) * (RANK + 1)
        _, sent, counts = _sent(col_ring, "allreduce", ring.allreduce, x_flat)
        # Rank r sends every span but r+1 (reduce-scatter) and every span but r+2 (gather).
        expected = 0 if P == 1 else 2 * S - 4 * (sizes[(RANK + 1) % P] + sizes[(RANK + 2) % P])
        assert sent == expected, f"P={P} allreduce of {S} B: rank {RANK} sent {sent} != {expected}"
        assert np.array_equal(x_flat, np.arange(n, dtype=np.float32) * (P * (P + 1) / 2))
        gathered, sent_g, counts_g = _sent(
            col_ring, "allgather", ring.allgather, np.full(sizes[RANK], RANK, np.float32), sizes
        )
        assert sent_g == (0 if P == 1 else S - 4 * sizes[(RANK + 1) % P]), (P, RANK, sent_g)
        assert np.array_equal(gathered, np.repeat(np.arange(P), sizes).astype(np.float32))
        block, sent_r, counts_r = _sent(
            col_ring,
            "reducescatter",
            ring.reduce_scatter,
            np.arange(n, dtype=np.float32) * (RANK + 1),
            sizes,
        )
        assert sent_r == (0 if P == 1 else S - 4 * sizes[RANK]), (P, RANK, sent_r)  # but its own
        lo = sum(sizes[:RANK])
        whole = np.arange(n, dtype=np.float32) * (P * (P + 1) / 2)
        assert np.array_equal(block, whole[lo : lo + sizes[RANK]]), (block, RANK)
        for name, mine, count in (
            ("allreduce", sent, counts),
            ("allgather", sent_g, counts_g),
            ("reducescatter", sent_r, counts_r),
        ):
            every = col.comm.allgather(mine)
            formula = bus_bytes(name, P, S)
            assert math.isclose(sum(every) / P, formula), (name, S, every, formula)
            if P > 1:  # one call, S recorded, and the formula that MPI's calls are counted by
                assert count[f"{name}_calls"] == 1 and count[f"{name}_size_bytes"] == S, count
                assert math.isclose(count[f"{name}_bus_bytes"], formula), (name, count)
            if n % P == 0:
                assert mine == formula, f"P={P} {name} of {S} B: rank {RANK} sent {mine}"
        done.append(f"ring bytes n={n}")


def check_native_against_ring():
    """MPI's collectives and the rings: sums bitwise alike on every rank (each kind), equal to
    each other within float32's rounding (bitwise at P = 2: a sum of two is one rounding), the
    gathers exact; MPI's counted bytes the formulas exactly."""
    rng = np.random.default_rng(20 + RANK)  # each rank its own addends
    for n in (1, 3, 4 * 5 * 7 + 1, 50_000):  # n < P, uneven blocks, past MPICH's short path
        sizes = [len(b) for b in np.array_split(np.arange(n), P)]
        x_flat = normal(rng, n)
        every_x = np.stack(col.comm.allgather(x_flat)).astype(np.float64)
        sums = {}
        for impl in (col, col_ring):
            summed = x_flat.copy()
            _, sent, _ = _sent(impl, "allreduce", impl.collectives.allreduce, summed)
            assert all(np.array_equal(summed, o) for o in col.comm.allgather(summed)), impl.name
            block = impl.collectives.reduce_scatter(x_flat, sizes)
            lo = sum(sizes[:RANK])
            np.testing.assert_allclose(block, every_x.sum(0)[lo : lo + sizes[RANK]], 1e-5, 1e-5)
            mine = x_flat[lo : lo + sizes[RANK]]
            gathered = impl.collectives.allgather(mine, sizes)
            assert np.array_equal(gathered, np.concatenate(col.comm.allgather(mine))), impl.name
            if impl is col:
                assert math.isclose(sent, bus_bytes("allreduce", P, 4 * n)), (sent, n)
            sums[impl.name] = summed
        np.testing.assert_allclose(sums["sharded-col"], every_x.sum(0), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(sums["sharded-col"], sums["sharded-col-ring"], 1e-5, 1e-5)
        if P <= 2:
            assert np.array_equal(sums["sharded-col"], sums["sharded-col-ring"])
        done.append(f"native against ring n={n}")


def _row(impl, workload, size, phase):
    """The cell's row through the runner, as `harness run` makes it (short timing)."""
    from harness.measure.budget import Budget

    cell = grid.Cell(impl.name, workload, size, phase)
    measurement = lifecycle.measurement_for(impl, lifecycle.Options(time_per_cell_s=0.01))
    got = lifecycle.run_cell(impl, cell, Budget(60), measurement)
    assert got["status"] == "ok", got
    assert len(got["rank_peak_mem_bytes"]) == P and len(got["rank_hosts"]) == P, got
    return got


def _assert_bandwidths(got, collective, S, calls):
    """S per phase call, and nccl-tests' busbw = algbw x the bus factor."""
    assert got[f"comm_{collective}_calls"] == (calls if P > 1 else 0), got
    assert got[f"comm_{collective}_size_bytes"] == (S if P > 1 else 0), got
    if P > 1:
        algbw, busbw = (got[f"comm_{collective}_{bw}_gb_per_s"] for bw in ("algbw", "busbw"))
        assert algbw > 0 and math.isclose(busbw, algbw * bus_bytes(collective, P, 1)), got


def check_harness_rows():
    """Through the runner: slowest-rank time split into compute + comm, per-call traffic and
    bandwidths, MPI's and the rings' alike; the overlapped backward's bytes and fraction."""
    B, n_in, n_out = 8, 12, 24  # divisible by 1..4: the formulas hold on every rank
    size = (("B", B), ("I", n_in), ("O", n_out))
    for impl, phase, collective, S in (
        (col, "fwd", "allgather", 4 * B * n_out),
        (col, "bwd", "allreduce", 4 * B * n_in),
        (row, "fwd", "allreduce", 4 * B * n_out),
        (row, "bwd", "allgather", 4 * B * n_in),
        (col_ring, "bwd", "allreduce", 4 * B * n_in),
        (rings[1], "fwd", "allreduce", 4 * B * n_out),
        (col_overlap, "bwd", "allreduce", 4 * B * n_in),
    ):
        got = _row(impl, "linear", size, phase)
        assert math.isclose(got[f"comm_{collective}_bytes"], bus_bytes(collective, P, S)), got
        if impl is col_overlap and P > 1:  # all of dx started before more compute
            assert got["comm_allreduce_calls"] == OVERLAP_SLABS, got
            assert got["comm_allreduce_size_bytes"] == S, got
            assert got["comm_overlap_bytes"] == S, got
            assert 0 <= got["comm_overlap_early_fraction"] <= 1, got
            # seconds inside MPI are not how long an overlapped all-reduce took: no bandwidth
            assert not any(k.startswith("comm_allreduce_") and "bw" in k for k in got), got
        else:
            _assert_bandwidths(got, collective, S, 1)
        assert got["P"] == P and got["size"] == f"B={B} I={n_in} O={n_out} P={P}", got
        assert got["t_compute_s"] > 0 and (
            got["t_comm_s"] > 0 if P > 1 else got["t_comm_s"] == 0
        ), got
        by_column = not impl.name.startswith("sharded-row")
        held = np.array_split(np.arange(n_out if by_column else n_in), P)[RANK].size
        # col: w_IOp and b_Op, its blocks; row: w_IpO and the whole b_O
        expected_w = 4 * (held * n_in + held) if by_column else 4 * (held * n_out + n_out)
        assert got["rank_weight_bytes"][RANK] == expected_w, (got["rank_weight_bytes"], RANK)
        done.append(f"{impl.name} {phase} row")
    n = 4 * 5 * 7 + 1  # blocks of n entries differ between ranks at every P in 2..4
    for impl, collective in itertools.product(
        (col, col_ring), ("allreduce", "allgather", "reducescatter")
    ):
        got = _row(impl, "collectives", (("collective", collective), ("N", n)), "fwd")
        assert got["rel_err"] == 0, got  # the sums add zeros: exact on every P
        _assert_bandwidths(got, collective, 4 * n, 1)
        done.append(f"{impl.name} collectives {collective} row")


# Sizes whose batch no P in 2..4 divides, and P = 4 can split (B >= 4).
DP_CELLS = (
    ("linear", {"B": 9, "I": 6, "O": 5}),
    ("matmul", {"M": 7, "K": 6, "N": 5}),
    ("mnist_mlp", {"B": 7, "layers": "20-9-5", "opt": "adam"}),
    ("cnn", {"B": 5, "Y": 8, "channels": "1-4-6", "C": 3, "opt": "momentum"}),
    ("attention", {"B": 5, "T": 3, "D": 8, "G": 2}),
    ("transformer_block", {"B": 5, "T": 3, "D": 8, "G": 2, "opt": "adam"}),
    ("gpt", {"B": 5, "T": 3, "D": 8, "G": 2, "L": 2, "V": 11, "opt": "sgd"}),
)


def check_data_parallel():
    """data-parallel: every phase (forward, backward, the optimizer step) of the products, the
    MLP, the CNN, attention, the transformer block and the GPT against the whole batch's
    float64 reference, within the workload's tolerance (the gate's); the MLP's gradients
    all-reduced, two per layer, and the loss once; each rank holding its rows alone."""
    from harness.execute.check import check

    for workload, size in DP_CELLS:
        for phase in get_workload(workload).phases:
            cell = grid.Cell(dp.name, workload, tuple(size.items()), phase)
            got, _ = check(dp, cell, None)
            assert got["status"] == "ok", (P, workload, phase, got.get("reason"))
            done.append(f"data-parallel {workload} {phase}")
    for n in (1, 141):  # a message is never split as a batch: 4 bytes too, on any P
        cell = grid.Cell(dp.name, "collectives", (("collective", "allreduce"), ("N", n)), "fwd")
        got, fn = check(dp, cell, None)
        assert (got["status"], fn) == ("unsupported", None), (P, n, got)
    done.append("data-parallel collectives unsupported")
    rng = np.random.default_rng(21)
    widths, B = (9, 7, 5), 6
    params = [
        dp.put(x, role)
        for n_in, n_out in zip(widths[:-1], widths[1:], strict=True)
        for x, role in ((normal(rng, n_in, n_out), "weight"), (normal(rng, n_out), "bias"))
    ]
    x_BI = dp.put(normal(rng, B, widths[0]), "activation")
    labels_B = dp.put(rng.integers(0, widths[-1], B), "label")
    held = x_BI.local if P > 1 else x_BI  # one rank holds the whole batch, unsplit
    assert dp.get(held).shape == (np.array_split(np.arange(B), P)[RANK].size, widths[0])
    before = dp.traffic()
    *_, cache = models.mlp_forward(dp, params, x_BI, labels_B)
    after_fwd = dp.traffic()
    models.mlp_backward(dp, params, cache, labels_B)
    after_bwd = dp.traffic()
    spans = ((before, after_fwd), (after_fwd, after_bwd))
    calls = [b["allreduce_calls"] - a["allreduce_calls"] for a, b in spans]
    assert calls == ([1, 2 * (len(widths) - 1)] if P > 1 else [0, 0]), calls
    assert after_bwd["allgather_calls"] == before["allgather_calls"]
    done.append("data-parallel all-reduces")


def check_refusal():
    """P larger than the split dimension: a clear error naming the size and P."""
    if P == 1:
        return
    rng = np.random.default_rng(10)
    for impl, shape in ((col, (5, P - 1)), (row, (P - 1, 5)), (mlp, (5, P - 1))):
        try:
            impl.put(normal(rng, *shape), "weight")
        except ValueError as error:
            assert f"over P={P} ranks: it has {P - 1} entries" in str(error), str(error)
        else:
            raise AssertionError(f"{impl.name} split a weight {shape} over P={P} ranks")
        done.append(f"{impl.name} refuses")
    if P > 2:  # a block of 2 heads over P > 2 ranks: every rank needs a whole head
        host = block_arrays(rng, 8)
        params = [mlp.put(*host[k]) for k in models.BLOCK_PARAMS]
        try:
            models.block_forward(mlp, params, mlp.put(normal(rng, 4, 8), "activation"), 1, 2, 8)
        except ValueError as error:
            assert (
                f"cannot split axis 1 of wq_DD of shape (8, 8) over P={P} ranks: it has 2 "
                "heads of 4 entries there"
                in str(error)
                and "--ranks <= 2" in str(error)
            ), str(error)
        else:
            raise AssertionError(f"sharded-mlp split a block of 2 heads over P={P} ranks")
        done.append("sharded-mlp refuses heads")


check_products()
check_mlps()
check_attention()
check_elementwise_on_shards()
check_megatron_block()
check_gpt()
check_mlp_pairing()
check_ring_bytes()
check_native_against_ring()
check_harness_rows()
check_data_parallel()
check_refusal()
if RANK == 0:
    print(f"sharded checks ok: P={P}, {len(done)} checks")
