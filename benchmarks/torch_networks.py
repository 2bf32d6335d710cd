"""The PyTorch eager contenders of benchmarks/network_targets.py: GPT-2's block trained one
Adam step, and one conv2d forward, each on a workload's inputs.

torch is passed in, never imported here, so it stays a benchmark-only dependency. Each maker
checks once, untimed, that its contender computes what the workload does: its output against
the float64 reference (harness/reference.py) through the models the harness composes.
"""

from __future__ import annotations

import numpy as np

from harness import models
from harness.contract import LN_EPS
from harness.measure.gate import rel_err
from harness.models import HYPER
from harness.reference import Reference
from harness.workloads import TOL_MODEL

_REF = Reference()


def _same_as_reference(what: str, theirs_np, ours_np) -> None:
    """Raise unless the contender's output is the reference's within TOL_MODEL."""
    err = rel_err([theirs_np], [ours_np])
    if not err <= TOL_MODEL:
        raise ValueError(
            f"the PyTorch {what} does not compute the workload's {what}: rel err {err:.3g} "
            f"against the float64 reference, expected <= {TOL_MODEL:g}"
        )


def make_torch_block_step(torch, host: dict, batch: int, heads: int, device: str = "cpu"):
    """-> step(): one Adam step of GPT-2's pre-norm block on the transformer_block inputs
    (host: name -> (array, role)): loss = sum(y * dy), so the gradient of y is the workload's
    dy_RD; -> that loss as a float (which also waits for a device).

    Attention is torch's fused scaled_dot_product_attention (causal, scale 1/sqrt(E)), what
    eager PyTorch code calls; the weights keep the contract's input-to-output layout (x @ w)."""
    F = torch.nn.functional
    as_tensor = lambda k: torch.tensor(host[k][0], device=device)
    params = [as_tensor(k).requires_grad_() for k in models.BLOCK_PARAMS]
    x_RD, dy_RD = as_tensor("x_RD"), as_tensor("dy_RD")
    R, D = x_RD.shape
    B, G, T, E = batch, heads, R // batch, D // heads
    adam = HYPER["adam"]
    opt = torch.optim.Adam(
        params, lr=adam["lr"], betas=(adam["beta1"], adam["beta2"]), eps=adam["eps"]
    )

    def heads_of(a_RD):  # (R, D) -> (B, G, T, E)
        return a_RD.view(B, T, G, E).transpose(1, 2)

    def forward():
        g1_D, b1_D, wq_DD, bq_D, wk_DD, bk_D, wv_DD, bv_D, wo_DD, bo_D = params[:10]
        g2_D, b2_D, wfc_DH, bfc_H, wproj_HD, bproj_D = params[10:]
        h1_RD = F.layer_norm(x_RD, (D,), g1_D, b1_D, eps=LN_EPS)
        q_BGTE = heads_of(torch.addmm(bq_D, h1_RD, wq_DD))
        k_BGSE = heads_of(torch.addmm(bk_D, h1_RD, wk_DD))
        v_BGSE = heads_of(torch.addmm(bv_D, h1_RD, wv_DD))
        o_BGTE = F.scaled_dot_product_attention(q_BGTE, k_BGSE, v_BGSE, is_causal=True)
        o_RD = o_BGTE.transpose(1, 2).reshape(R, D)
        x2_RD = x_RD + torch.addmm(bo_D, o_RD, wo_DD)
        h2_RD = F.layer_norm(x2_RD, (D,), g2_D, b2_D, eps=LN_EPS)
        g_RH = F.gelu(torch.addmm(bfc_H, h2_RD, wfc_DH), approximate="tanh")
        return x2_RD + torch.addmm(bproj_D, g_RH, wproj_HD)

    with torch.no_grad():
        y_RD = forward().cpu().numpy()
    ref_params = [host[k][0].astype(np.float64) for k in models.BLOCK_PARAMS]
    x64_RD = host["x_RD"][0].astype(np.float64)
    y64_RD, _ = models.block_forward(_REF, ref_params, x64_RD, batch, heads, D)
    _same_as_reference("block's output", y_RD, y64_RD)

    def step():
        loss = (forward() * dy_RD).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()

    step.params = params  # the trained tensors, for a test to read back
    return step


def make_torch_conv(torch, host: dict, stride: int, padding: int, device: str = "cpu"):
    """-> conv(): torch.nn.functional.conv2d on the conv2d inputs (host: name -> (array,
    role)), NCHW like the contract's x_BQYZ, w_FQJL, b_F; -> y_BFUW (on the device: a caller
    on a GPU waits for it)."""
    x_BQYZ, w_FQJL, b_F = (
        torch.tensor(host[k][0], device=device) for k in ("x_BQYZ", "w_FQJL", "b_F")
    )
    window = {"stride": stride, "padding": padding}

    def conv():
        return torch.nn.functional.conv2d(x_BQYZ, w_FQJL, b_F, **window)

    with torch.no_grad():
        y_BFUW = conv().cpu().numpy()
    y64_BFUW = _REF.conv2d(
        *(host[k][0].astype(np.float64) for k in ("x_BQYZ", "w_FQJL", "b_F")), **window
    )
    _same_as_reference("conv2d's output", y_BFUW, y64_BFUW)
    return conv
