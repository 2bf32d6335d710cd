"""Training the CNN and the GPT: short runs that agree across rungs, the sampler, MLPerf's
scoring, saved models and their refusals, the fields the report draws, and the child's
interim messages.

The short runs are short (a subset, a tiny model, a few epochs or steps): their thresholds are
what such a run meets, not the full targets, which benchmarks/train_targets.py measures.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from functools import lru_cache

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from harness import cli, registry
from harness.execute.child import Child
from harness.reference import Reference
from harness.results import store
from harness.train import checks, corpus, datasets, lm, loop, nets, plan, scores
from harness.train.weights import WeightsError, save_weights
from impls.numpy_impl import NumpyImpl

SHORT_CNN = loop.Config(model="cnn", channels=(1, 8, 16), epochs=3, batch=16, opt="adam", lr=0.01)
SHORT_GPT = lm.LMConfig(
    steps=6,
    eval_every=3,
    batch=2,
    context=8,
    dim=8,
    blocks=1,
    heads=2,
    lr=1e-2,
    val_batches=1,
    sample_chars=12,
)
RUNGS = ("pure_python", "numpy")


@pytest.fixture(autouse=True, scope="module")
def one_blas_thread():
    with threadpool_limits(1, user_api="blas"):
        yield


@lru_cache(maxsize=1)
def digits_subset():
    pytest.importorskip("sklearn", reason="digits needs scikit-learn (the `data` extra)")
    data = datasets.digits()
    return dataclasses.replace(
        data,
        x_train_BI=data.x_train_BI[:160],
        labels_train_B=data.labels_train_B[:160],
        x_test_BI=data.x_test_BI[:80],
        labels_test_B=data.labels_test_B[:80],
    )


@lru_cache(maxsize=4)
def short_cnn(name):
    ops = Reference() if name == "reference" else registry.create(name)
    return loop.train(ops, digits_subset(), SHORT_CNN)


@lru_cache(maxsize=4)
def short_gpt(name):
    ops = Reference() if name == "reference" else registry.create(name)
    return lm.train(ops, corpus.load(), SHORT_GPT)


# ---- short runs, every rung alike ------------------------------------------------------


@pytest.mark.parametrize("name", RUNGS)
def test_short_cnn_run_learns_and_agrees_with_the_float64_reference(name):
    result, expected = short_cnn(name), short_cnn("reference")
    assert result.loss_by_epoch[-1] < 0.7 * result.loss_by_epoch[0]
    assert result.test["accuracy"] > 0.5  # 3 epochs of 160 digits: far above chance
    np.testing.assert_allclose(result.loss_by_epoch, expected.loss_by_epoch, rtol=1e-3)
    rows = [{"status": "ok", "seed": 0, "test_acc": r.test["accuracy"]} for r in (result, expected)]
    assert checks.spread_pp(rows) <= checks.SPREAD_LIMIT_PP


@pytest.mark.parametrize("name", RUNGS)
def test_short_gpt_run_learns_and_its_losses_agree_with_the_float64_reference(name):
    result, expected = short_gpt(name), short_gpt("reference")
    assert len(result.loss_by_step) == SHORT_GPT.steps
    assert result.val_loss_by_epoch[-1] < result.val_loss_by_epoch[0] < np.log(72) + 0.5
    np.testing.assert_allclose(result.loss_by_step, expected.loss_by_step, rtol=1e-4)
    rows = [
        {"status": "ok", "seed": 0, **scores.result_fields(r, "gpt")} for r in (result, expected)
    ]
    assert rows[0]["check_step"] == SHORT_GPT.steps  # fewer than 50 steps: the last is checked
    assert checks.loss_spread(rows) <= checks.LOSS_LIMIT_REL
    assert result.samples_by_epoch == [3 * 2 * 8, 3 * 2 * 8]  # steps x B x T: tokens
    assert len(result.sample) == SHORT_GPT.sample_chars


def test_the_cross_rung_checks_compare_runs_of_one_seed_only():
    rows = [
        {"status": "ok", "seed": 0, "test_acc": 0.98, "check_loss": 2.0},
        {"status": "ok", "seed": 0, "test_acc": 0.99, "check_loss": 2.001},
        {"status": "ok", "seed": 1, "test_acc": 0.90, "check_loss": 3.0},
        {"status": "error", "seed": 1, "test_acc": None},
    ]
    assert checks.spread_pp(rows) == pytest.approx(1.0)  # seed 1's 0.90 is alone
    assert checks.loss_spread(rows) == pytest.approx(5e-4)


# ---- the sampler ---------------------------------------------------------------------------


def test_the_sample_is_seeded_and_drawn_from_the_forwards_probabilities(monkeypatch):
    text = corpus.load()
    params = lm.init_params(SHORT_GPT, text.vocab)
    ops = NumpyImpl()
    placed = [ops.put(params[n], "weight") for n in params]
    first = lm.sample(ops, placed, text, SHORT_GPT)
    assert first == lm.sample(ops, placed, text, SHORT_GPT)
    assert first != lm.sample(ops, placed, text, dataclasses.replace(SHORT_GPT, seed=1))
    always_e = np.zeros((1, text.vocab))
    always_e[0, text.chars.index("e")] = 1.0

    def forward(ops, params, tokens_R, *rest):
        assert len(tokens_R) <= SHORT_GPT.context  # the window, never more than T
        return 0.0, (np.repeat(always_e, len(tokens_R), axis=0),)

    monkeypatch.setattr(lm.models, "gpt_forward", forward)
    assert lm.sample(ops, placed, text, SHORT_GPT) == "e" * SHORT_GPT.sample_chars


# ---- MLPerf's score --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("times", "mean_s", "averaged", "not_reached"),
    [
        ([5.0, 1.0, 3.0, 4.0, 2.0], 3.0, 3, 0),  # 1 and 5 dropped
        ([None, 1.0, 2.0, 3.0, 4.0], 3.0, 3, 1),  # never reached counts as slowest: dropped
        ([None, None, 1.0, 2.0, 3.0], None, 3, 2),  # one unreached run is averaged: no time
        ([2.0, 4.0], 3.0, 2, 0),  # too few to drop any
        ([None], None, 1, 1),
        ([], None, 0, 0),
    ],
)
def test_mlperf_score_drops_the_fastest_and_slowest(times, mean_s, averaged, not_reached):
    score = checks.mlperf_score(times)
    assert score == {
        "mean_s": mean_s,
        "runs": len(times),
        "averaged": averaged,
        "not_reached": not_reached,
    }


# ---- saved models ----------------------------------------------------------------------------


def test_a_saved_cnn_loads_back_and_evaluates_the_same(tmp_path):
    result, data = short_cnn("numpy"), digits_subset()
    path = save_weights(tmp_path / "cnn.npz", result.weights)
    weights = plan.load_weights(path, SHORT_CNN, data)
    again = loop.train(NumpyImpl(), data, dataclasses.replace(SHORT_CNN, epochs=0), weights)
    assert again.test == result.test


def test_a_saved_gpt_loads_back_and_evaluates_the_same(tmp_path):
    result, text = short_gpt("numpy"), corpus.load()
    path = save_weights(tmp_path / "gpt.npz", result.weights)
    weights = plan.load_weights(path, SHORT_GPT, text)
    again = lm.train(NumpyImpl(), text, dataclasses.replace(SHORT_GPT, steps=0), weights)
    assert again.test["val_loss"] == pytest.approx(result.val_loss_by_epoch[-1], rel=1e-6)
    assert again.sample == result.sample


def test_a_model_file_that_does_not_fit_is_refused_with_every_mismatch(tmp_path):
    data, text = digits_subset(), corpus.load()
    cnn = save_weights(tmp_path / "cnn.npz", short_cnn("numpy").weights)
    with pytest.raises(
        WeightsError,
        match=r"does not fit the GPT L1 D8 G2 T8 V72: missing bf_D .*; unexpected w1_FQJL",
    ):
        plan.load_weights(cnn, SHORT_GPT, text)
    wider = dataclasses.replace(SHORT_CNN, channels=(1, 6, 16))
    with pytest.raises(WeightsError, match=r"the CNN 1-6-16 on 8x8 images: .*w1_FQJL has shape"):
        plan.load_weights(cnn, wider, data)
    broken = dict(short_cnn("numpy").weights)
    broken["b2_F"] = np.full_like(broken["b2_F"], np.nan)
    path = save_weights(tmp_path / "nan.npz", broken)
    with pytest.raises(WeightsError, match="b2_F holds NaN or infinity"):
        plan.load_weights(path, SHORT_CNN, data)
    doubled = {**short_gpt("numpy").weights, "extra_D": np.zeros(8, np.float32)}
    path = save_weights(tmp_path / "extra.npz", doubled)
    with pytest.raises(WeightsError, match=r"unexpected extra_D \(shape \(8,\)\)"):
        plan.load_weights(path, SHORT_GPT, text)


# ---- the fields the report draws ---------------------------------------------------------------


def test_a_cnn_row_has_the_layers_histograms_norms_and_filters():
    row = scores.result_fields(short_cnn("numpy"), "cnn")
    assert list(row["weight_hist_by_epoch"]) == ["w1_FQJL", "w2_FQJL", "w3_IO"]  # no biases
    assert [e["epoch"] for e in row["weight_hist_by_epoch"]["w3_IO"]] == [1, 2, 3]
    entry = row["act_hist_by_epoch"]["relu2"][0]
    assert len(entry["counts"]) == 20 and len(entry["edges"]) == 21 and min(entry["edges"]) >= 0
    assert list(row["act_hist_by_epoch"]) == [
        "conv1",
        "relu1",
        "pool1",
        "conv2",
        "relu2",
        "pool2",
        "fc",
    ]
    assert {k: len(v) for k, v in row["grad_norm_by_epoch"].items()} == dict.fromkeys(
        ["w1_FQJL", "b1_F", "w2_FQJL", "b2_F", "w3_IO", "b3_O"], 3
    )
    assert np.array(row["filters_FQJL"]).shape == (8, 1, 3, 3)
    assert row["samples_by_epoch"] == [160, 160, 160]
    json.dumps(row)  # the row is stored as JSON


def test_a_gpt_row_has_its_curves_sample_and_layers():
    row = scores.result_fields(short_gpt("numpy"), "gpt")
    assert len(row["loss_by_step"]) == 6 and len(row["val_loss_by_epoch"]) == 2
    assert row["tokens_per_s"] > 0 and isinstance(row["sample"], str)
    assert list(row["act_hist_by_epoch"]) == ["embed", "h0", "ln_f", "logits"]
    assert "h0_wq_DD" in row["weight_hist_by_epoch"] and "h0_bq_D" not in row["weight_hist"]
    json.dumps(row)


# ---- the command -----------------------------------------------------------------------------


GPT_ARGS = ["--model", "gpt", "--steps", "4", "--eval-every", "2", "--dim", "8", "--heads", "2"]
GPT_ARGS += ["--blocks", "1", "--context", "8", "--batch", "2", "--sample-chars", "5"]


def test_gpt_trains_in_children_whose_progress_reaches_the_parent(tmp_path, capsys):
    results = str(tmp_path / "results")
    assert cli.main(["train", *GPT_ARGS, "--impl", "numpy", "--results", results]) == 0
    captured = capsys.readouterr()
    assert "numpy        epoch 1/2" in captured.err and "tokens/s" in captured.err
    (row,) = store.load(results).to_dict("records")
    assert (row["model"], row["check_step"], row["steps"]) == ("gpt", 4, 4)


def test_cnn_with_seeds_scores_each_impl_mlperf_style(tmp_path, capsys):
    digits_subset()
    args = ["train", "--model", "cnn", "--channels", "1-4-8", "--epochs", "1", "--seeds", "3"]
    args += ["--target-acc", "0.2", "--in-process", "--results", str(tmp_path / "results")]
    assert cli.main(args) == 0
    rows = store.load(str(tmp_path / "results")).to_dict("records")
    assert [r["seed"] for r in rows] == [0, 1, 2]
    assert {r["mlperf_runs"] for r in rows} == {3} and {r["mlperf_averaged"] for r in rows} == {1}
    assert "MLPerf's way" in capsys.readouterr().out


# ---- the child protocol's interim messages -------------------------------------------------


CHILD = """
from harness.execute import child
send = child.channel()
for epoch in (1, 2):
    send(kind=child.INTERIM, progress={"epoch": epoch})
send(kind="row", row={"ok": True})
"""


def test_a_childs_interim_messages_come_before_its_result(tmp_path):
    (tmp_path / "interim_child.py").write_text(CHILD)
    path = os.pathsep.join([str(tmp_path), *sys.path])
    seen = []
    with Child("interim_child", {}, env={**os.environ, "PYTHONPATH": path}) as child:
        message = child.result(seen.append)
        assert message == {"kind": "row", "row": {"ok": True}}
        assert child.result() is None  # then the end of its stream
    assert [m["progress"]["epoch"] for m in seen] == [1, 2]


def test_what_the_command_line_cannot_mean_is_said_before_training():
    parser = cli.build_parser()

    def config(*args):
        parsed = parser.parse_args(["train", *args])
        data = corpus.load() if parsed.model == "gpt" else digits_subset()
        plan.dataset_for(parsed)
        return plan.config_for(parsed, data)

    assert config("--model", "gpt", "--epochs", "3").steps == 3 * 50
    assert config("--model", "cnn").lr == 0.01 and config("--model", "cnn").epochs == 15
    assert config("--model", "cnn", "--opt", "sgd").learning_rate == 0.1  # sgd's own rate
    with pytest.raises(ValueError, match="give --steps or --epochs"):
        config("--model", "gpt", "--steps", "9", "--epochs", "2")
    with pytest.raises(ValueError, match="trains on the shipped corpus: drop --dataset"):
        config("--model", "gpt", "--dataset", "digits")
    with pytest.raises(ValueError, match=r"channels 3-8-16 must be 1 \(grey images\)"):
        config("--model", "cnn", "--channels", "3-8-16")
    with pytest.raises(ValueError, match="the image side 10 must be a multiple of 4"):
        config("--model", "cnn", "--image", "10")
    with pytest.raises(ValueError, match="dim 30 must be a multiple of heads 4"):
        config("--model", "gpt", "--dim", "30")
    with pytest.raises(ValueError, match=r"--model mlp does not take --steps \(for gpt\)"):
        config("--steps", "9")
    with pytest.raises(ValueError, match=r"--model gpt does not take --target-acc \(for mlp and"):
        config("--model", "gpt", "--target-acc", "0.9")


def test_the_cnn_reads_images_nearest_neighbour_upsampled():
    data = digits_subset()
    x_BQYZ = nets.CNN((1, 4, 8), 16, data).inputs(data.x_train_BI[:3])
    pixels_BYZ = data.x_train_BI[:3].reshape(3, 8, 8)
    expected = np.repeat(np.repeat(pixels_BYZ, 2, axis=1), 2, axis=2)[:, None]
    np.testing.assert_array_equal(x_BQYZ, expected)
    as_is = nets.CNN((1, 4, 8), None, data)
    assert as_is.image == 8 and as_is.shapes()["w3_IO"] == (8 * 2 * 2, 10)
    np.testing.assert_array_equal(as_is.inputs(data.x_train_BI[:3])[:, 0], pixels_BYZ)
