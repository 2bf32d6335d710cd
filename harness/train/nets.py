"""The classifiers `train` trains, as its loop (loop.py) sees them: the MLP and the CNN.

A net names its parameters and their shapes, makes its seeded initial weights, turns a
dataset's rows of pixels into what the model reads, and runs the model's forward and backward
(harness.models) through an impl's ops. `activations` is each layer's output on a batch, for
the report's histograms, computed with the contract's ops one layer at a time, so an impl that
fuses the model (contract.Impl.fused) shows its layers too.

The CNN reads square grey images: a dataset's rows of side x side pixels (8 x 8 for digits),
nearest-neighbour upsampled to `image` x `image` (by default the data's own side: digits' 8 x 8
as they are; README, "Training end to end", says why), then conv3x3-relu-pool twice and a
linear head (harness/models/cnn.py).
"""

from __future__ import annotations

import math

import numpy as np

from harness import models
from harness.models.cnn import CONV
from harness.train.weights import init_weights, weight_shapes
from harness.workloads.base import normal

CNN_CHANNELS = (1, 16, 32)  # the image's channels, then each conv's filters


class MLP:
    model = "mlp"

    def __init__(self, layers, data):
        self.layers = tuple(layers)
        if (self.layers[0], self.layers[-1]) != (data.features, data.classes):
            raise ValueError(
                f"MLP {self.label} does not fit dataset {data.name}: it has "
                f"{data.features} features and {data.classes} classes, so the layers "
                f"must start with {data.features} and end with {data.classes}"
            )

    @property
    def label(self) -> str:
        return "-".join(map(str, self.layers))

    def shapes(self) -> dict:
        return weight_shapes(self.layers)

    def init(self, seed: int) -> dict:
        return init_weights(self.layers, seed)

    def inputs(self, x_BI):
        return x_BI

    def forward(self, ops, params, x, labels_B):
        return models.mlp_forward(ops, params, x, labels_B)

    def backward(self, ops, params, cache, labels_B):
        return models.mlp_backward(ops, params, cache, labels_B)

    def activations(self, ops, params, x_BI) -> dict:
        """{fc0: .., relu0: .., fc1: ..}: each layer's pre-activation, then its relu."""
        out, h_BI, n_layers = {}, x_BI, len(params) // 2
        for layer in range(n_layers):
            h_BI = out[f"fc{layer}"] = ops.linear(h_BI, params[2 * layer], params[2 * layer + 1])
            if layer < n_layers - 1:
                h_BI = out[f"relu{layer}"] = ops.relu(h_BI)
        return out


class CNN:
    model = "cnn"

    def __init__(self, channels, image: int | None, data):
        self.side = math.isqrt(data.features)
        self.channels, self.classes = tuple(channels), data.classes
        self.image = image = self.side if image is None else image
        problems = []
        if self.side * self.side != data.features:
            problems.append(f"its {data.features} features are not a square image")
        if len(self.channels) != 3 or min(self.channels) < 1 or self.channels[0] != 1:
            problems.append(
                f"channels {self.label} must be 1 (grey images), then two convs' filters, "
                "e.g. 1-8-16"
            )
        if image % 4 or image < self.side:
            problems.append(
                f"the image side {image} must be a multiple of 4 (two 2x2 pools) and at "
                f"least the data's {self.side}"
            )
        if problems:
            raise ValueError(f"CNN does not fit dataset {data.name}: " + "; ".join(problems))

    @property
    def label(self) -> str:
        return "-".join(map(str, self.channels))

    def shapes(self) -> dict:
        q, f1, f2 = self.channels
        s4 = self.image // 4
        return {
            "w1_FQJL": (f1, q, 3, 3),
            "b1_F": (f1,),
            "w2_FQJL": (f2, f1, 3, 3),
            "b2_F": (f2,),
            "w3_IO": (f2 * s4 * s4, self.classes),
            "b3_O": (self.classes,),
        }

    def init(self, seed: int) -> dict:
        """He-scaled weights (normal, std sqrt(2 / fan-in)) and biases N(0, 0.1), as the cnn
        workload's (harness/workloads/conv.py)."""
        rng = np.random.default_rng(seed)
        return {
            name: normal(rng, shape, math.sqrt(2.0 / math.prod(shape[1:])))
            if len(shape) > 1
            else normal(rng, shape, 0.1)
            for name, shape in self.shapes().items()
        }

    def inputs(self, x_BI):
        """Rows of side x side pixels -> images x_BQYZ, nearest-neighbour upsampled."""
        from_Y = ((np.arange(self.image) + 0.5) * self.side / self.image).astype(np.int64)
        x_BQYZ = x_BI.reshape(len(x_BI), 1, self.side, self.side)
        return np.ascontiguousarray(x_BQYZ[:, :, from_Y][:, :, :, from_Y], dtype=np.float32)

    def forward(self, ops, params, x, labels_B):
        return models.cnn_forward(ops, params, x, labels_B)

    def backward(self, ops, params, cache, labels_B):
        s4 = self.image // 4
        return models.cnn_backward(ops, params, cache, labels_B, (self.channels[2], s4, s4))

    def activations(self, ops, params, x_BQYZ) -> dict:
        w1_FQJL, b1_F, w2_FQJL, b2_F, w3_IO, b3_O = params
        out = {"conv1": ops.conv2d(x_BQYZ, w1_FQJL, b1_F, **CONV)}
        out["relu1"] = ops.relu(out["conv1"])
        out["pool1"] = ops.maxpool2d(out["relu1"])
        out["conv2"] = ops.conv2d(out["pool1"], w2_FQJL, b2_F, **CONV)
        out["relu2"] = ops.relu(out["conv2"])
        out["pool2"] = ops.maxpool2d(out["relu2"])
        out["fc"] = ops.linear(ops.flatten(out["pool2"]), w3_IO, b3_O)
        return out


def for_config(config, data):
    """The net a loop.Config asks for, checked against the dataset."""
    if config.model == "cnn":
        return CNN(config.channels, config.image, data)
    return MLP(config.layers, data)
