"""The PyTorch eager MNIST-MLP training step both target scripts measure the ladder against."""

from __future__ import annotations

from harness.models import HYPER


def make_torch_step(torch, host: dict, layers: int, device: str = "cpu"):
    """-> step(): one SGD step of the MLP on the workload's inputs, the loss as a float."""
    as_tensor = lambda k: torch.tensor(host[k][0], device=device)
    params = [
        as_tensor(f"{wb}{layer}_{dims}").requires_grad_()
        for layer in range(layers)
        for wb, dims in (("w", "IO"), ("b", "O"))
    ]
    x_BI, labels_B = as_tensor("x_BI"), as_tensor("labels_B")
    opt = torch.optim.SGD(params, lr=HYPER["sgd"]["lr"])

    def step():
        h_BI = x_BI
        for layer in range(layers):
            h_BI = torch.addmm(params[2 * layer + 1], h_BI, params[2 * layer])
            if layer < layers - 1:
                h_BI = torch.relu(h_BI)
        loss = torch.nn.functional.cross_entropy(h_BI, labels_B)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()  # the contract's loss is a float too

    return step
