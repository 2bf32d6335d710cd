"""Training: metrics against scikit-learn, batches, weights files, the loop, the `train` command.

The cross-rung check: every impl that can run here trains the same MLP on the same batches
as the float64 reference does, and must end within SPREAD_LIMIT_PP of it.
"""

from __future__ import annotations

import dataclasses
import json
import types
from functools import lru_cache

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from harness import cli, registry
from harness.reference import Reference
from harness.report import training as train_report
from harness.results import ceilings, machine, store
from harness.train import checks, datasets, plan, scores
from harness.train import loop as train
from impls.numpy_impl import NumpyImpl
from tests.conftest import impl_params


@pytest.fixture(autouse=True, scope="module")
def one_blas_thread():
    """These tests check numbers, not speed: one BLAS thread keeps them quick on a shared
    machine, where OpenBLAS threads spin-wait for busy cores (an epoch runs 10x slower)."""
    with threadpool_limits(1, user_api="blas"):
        yield


DIGITS = train.Config(layers=(64, 32, 10), epochs=20, batch=32, opt="sgd")
# The slow rungs (pure Python) train a small MLP on a subset: the same check, in seconds.
TINY = train.Config(layers=(64, 16, 10), epochs=3, batch=32, opt="sgd")


@lru_cache(maxsize=1)
def digits():
    pytest.importorskip("sklearn", reason="digits needs scikit-learn (the `data` extra)")
    return datasets.digits()


def subset(data, n_train, n_test):
    return dataclasses.replace(
        data,
        x_train_BI=data.x_train_BI[:n_train],
        labels_train_B=data.labels_train_B[:n_train],
        x_test_BI=data.x_test_BI[:n_test],
        labels_test_B=data.labels_test_B[:n_test],
    )


@lru_cache(maxsize=4)
def reference_result(config, n_train=None, n_test=None):
    data = digits() if n_train is None else subset(digits(), n_train, n_test)
    return train.train(Reference(), data, config)


# ---- metrics ------------------------------------------------------------------------------


def test_metrics_match_scikit_learn():
    sk = pytest.importorskip("sklearn.metrics", reason="the cross-check needs scikit-learn")
    rng = np.random.default_rng(0)
    labels_B = rng.integers(0, 5, 300)
    right_B = (rng.random(300) < 0.7) & (labels_B < 4)
    pred_B = np.where(right_B, labels_B, rng.integers(0, 4, 300))  # class 4 never predicted
    got = scores.metrics(labels_B, pred_B, 5)
    np.testing.assert_array_equal(
        got["confusion_CC"], sk.confusion_matrix(labels_B, pred_B, labels=range(5))
    )
    assert got["accuracy"] == pytest.approx(sk.accuracy_score(labels_B, pred_B))
    precision_C = sk.precision_score(
        labels_B, pred_B, labels=range(5), average=None, zero_division=0
    )
    recall_C = sk.recall_score(labels_B, pred_B, labels=range(5), average=None)
    np.testing.assert_allclose(got["precision_C"][:4], precision_C[:4])
    assert got["precision_C"][4] is None  # class 4 is never predicted: no precision
    np.testing.assert_allclose(got["recall_C"], recall_C)
    json.dumps(got)  # fit for a results row


def test_metrics_reject_mismatched_lengths():
    with pytest.raises(ValueError, match=r"labels_B has shape \(3,\) but pred_B has shape \(2,\)"):
        scores.metrics(np.array([0, 1, 2]), np.array([0, 1]), 3)


# ---- batches and weights ------------------------------------------------------------------


def test_batch_order_covers_every_sample_once_and_is_seeded():
    batches = train.batch_order(100, 32, seed=1, epoch=1)
    assert [len(b) for b in batches] == [32, 32, 32, 4]
    np.testing.assert_array_equal(np.sort(np.concatenate(batches)), np.arange(100))
    again = train.batch_order(100, 32, seed=1, epoch=1)
    assert all(np.array_equal(a, b) for a, b in zip(batches, again, strict=True))
    next_epoch = np.concatenate(train.batch_order(100, 32, seed=1, epoch=2))
    assert not np.array_equal(np.concatenate(batches), next_epoch)


def test_init_weights_are_seeded_and_have_the_model_shapes():
    weights = train.init_weights((5, 4, 3), seed=2)
    assert (
        {k: w.shape for k, w in weights.items()}
        == train.weight_shapes((5, 4, 3))
        == {"w0_IO": (5, 4), "b0_O": (4,), "w1_IO": (4, 3), "b1_O": (3,)}
    )
    assert all(w.dtype == np.float32 for w in weights.values())
    np.testing.assert_array_equal(train.init_weights((5, 4, 3), seed=2)["w1_IO"], weights["w1_IO"])


def test_weights_round_trip_through_npz(tmp_path):
    weights = train.init_weights((5, 4, 3), seed=0)
    path = train.save_weights(tmp_path / "w", weights)
    assert path.name == "w.npz"
    loaded = train.load_weights(path, (5, 4, 3))
    assert list(loaded) == list(weights)
    for name in weights:
        np.testing.assert_array_equal(loaded[name], weights[name])


def test_load_weights_says_every_mismatch(tmp_path):
    weights = train.init_weights((5, 4, 3), seed=0)
    weights["w0_IO"] = weights["w0_IO"][:, :2]
    weights["b1_O"] = weights["b1_O"].astype(np.float64)
    del weights["w1_IO"]
    weights["extra_O"] = np.zeros(3, np.float32)
    path = train.save_weights(tmp_path / "w.npz", weights)
    with pytest.raises(train.WeightsError) as caught:
        train.load_weights(path, (5, 4, 3))
    message = str(caught.value)
    assert message.startswith(f"{path} does not fit the MLP 5-4-3: ")
    for part in (
        "b1_O has dtype float64, expected float32",
        "missing w1_IO (shape (4, 3))",
        "unexpected extra_O (shape (3,))",
        "w0_IO has shape (5, 2), expected (5, 4)",
    ):
        assert part in message


def test_load_weights_names_a_file_that_is_not_npz(tmp_path):
    path = tmp_path / "w.npz"
    path.write_text("not a zip")
    with pytest.raises(train.WeightsError, match=r"w\.npz: cannot read it as an npz"):
        train.load_weights(path, (5, 4, 3))


# ---- the loop -----------------------------------------------------------------------------


def test_train_rejects_a_model_that_does_not_fit_the_data():
    with pytest.raises(
        ValueError, match="MLP 60-32-10 does not fit dataset digits: it has 64 features"
    ):
        train.train(NumpyImpl(), digits(), dataclasses.replace(DIGITS, layers=(60, 32, 10)))


def test_evaluation_is_outside_the_training_clock(monkeypatch):
    """A clock that moves only while results come back to the host (get: evaluation only)."""
    now = [0.0]
    monkeypatch.setattr(train, "time", types.SimpleNamespace(perf_counter=lambda: now[0]))

    class SlowGet(NumpyImpl):
        def get(self, x):
            now[0] += 100.0
            return super().get(x)

    result = train.train(
        SlowGet(), subset(digits(), 200, 100), dataclasses.replace(TINY, epochs=2, target_acc=0.01)
    )
    assert now[0] > 0  # evaluation did call get
    assert result.seconds_by_epoch == [0.0, 0.0]
    assert (result.epochs_to_target, result.time_to_target_s) == (1, 0.0)


def test_time_to_target_is_the_training_time_up_to_that_epoch():
    result = train.train(
        NumpyImpl(), subset(digits(), 400, 200), dataclasses.replace(TINY, epochs=4, target_acc=0.5)
    )
    hit = next(i for i, acc in enumerate(result.test_acc_by_epoch) if acc >= 0.5)
    assert result.epochs_to_target == hit + 1
    assert result.time_to_target_s == pytest.approx(sum(result.seconds_by_epoch[: hit + 1]))


def test_trained_weights_load_back_and_evaluate_the_same(tmp_path):
    data = subset(digits(), 400, 200)
    result = train.train(NumpyImpl(), data, TINY)
    path = train.save_weights(tmp_path / "w.npz", result.weights)
    again = train.train(
        NumpyImpl(),
        data,
        dataclasses.replace(TINY, epochs=0),
        weights=train.load_weights(path, TINY.layers),
    )
    assert again.test == result.test
    assert again.test["accuracy"] == result.test_acc_by_epoch[-1]


@pytest.mark.parametrize("opt", ["sgd", "momentum", "adam"])
def test_every_optimizer_learns(opt):
    result = train.train(NumpyImpl(), digits(), dataclasses.replace(DIGITS, opt=opt, epochs=5))
    assert result.loss_by_epoch[-1] < 0.5 * result.loss_by_epoch[0]
    assert result.test["accuracy"] > 0.85


def test_lr_overrides_the_default_rate():
    data = subset(digits(), 200, 100)
    default = train.train(NumpyImpl(), data, TINY)
    frozen = train.train(NumpyImpl(), data, dataclasses.replace(TINY, lr=0.0))
    assert frozen.weights["w0_IO"] == pytest.approx(train.init_weights(TINY.layers, 0)["w0_IO"])
    assert not np.allclose(default.weights["w0_IO"], frozen.weights["w0_IO"])


# ---- the cross-rung proof -----------------------------------------------------------------


@pytest.mark.parametrize("name", impl_params())
def test_every_impl_trains_digits_like_the_float64_reference(name):
    """Same weights, same batches: each impl's final test accuracy within 0.5 points of the
    float64 reference's. Fast rungs train the full digits target (64-32-10, 20 epochs, >= 95%);
    the pure-Python rung a tiny model on a subset."""
    ops = registry.create(name)
    if registry.get_class(name).rung == 0:
        config, sizes = TINY, (300, 100)
        result = train.train(ops, subset(digits(), *sizes), config)
    else:
        config, sizes = DIGITS, (None, None)
        result = train.train(ops, digits(), config)
        assert result.test["accuracy"] >= 0.95
    expected = reference_result(config, *sizes).test["accuracy"]
    assert abs(result.test["accuracy"] - expected) * 100 <= checks.SPREAD_LIMIT_PP
    assert len(result.test_acc_by_epoch) == config.epochs


# ---- the command --------------------------------------------------------------------------


class FlippedGradient(NumpyImpl):
    """A backward with its sign wrong: it trains away from the labels."""

    name = "flipped"

    def softmax_xent_bwd(self, probs_BC, labels_B):
        return -super().softmax_xent_bwd(probs_BC, labels_B)


class Crashing(NumpyImpl):
    name = "crashing"

    def relu(self, x_BI):
        raise RuntimeError("kernel launch failed")


class NoRelu(NumpyImpl):
    name = "norelu"

    def relu(self, x_BI):
        raise NotImplementedError


class Absent(NumpyImpl):
    name = "absent"

    @classmethod
    def unavailable_reason(cls):
        return "no such device here"


@pytest.fixture
def fake_registry(monkeypatch):
    impls = {cls.name: cls for cls in (NumpyImpl, FlippedGradient, Crashing, NoRelu, Absent)}
    monkeypatch.setattr(registry, "_discover", lambda: impls)


def run_train(tmp_path, *args):
    """The command on the fake registry, which only this process knows: --in-process."""
    return cli.main(
        ["train", "--epochs", "2", "--results", str(tmp_path / "results"), "--in-process", *args]
    )


def test_an_impl_that_segfaults_costs_its_own_row_only(tmp_path, monkeypatch, capsys):
    """Without --in-process each impl trains in a child: a crash there is an error row."""
    monkeypatch.setenv("NNLADDER_IMPLS", "tests.fault_impls")
    registry._discover.cache_clear()
    try:
        code = cli.main(
            [
                "train",
                "--epochs",
                "1",
                "--results",
                str(tmp_path / "results"),
                "--impl",
                "fault-segv-train,numpy",
                "--save",
                str(tmp_path / "w"),
            ]
        )
    finally:
        registry._discover.cache_clear()
    captured = capsys.readouterr()
    assert code == 1
    assert "FAILED: fault-segv-train raised an error" in captured.err
    assert "numpy        epoch 1/1" in captured.err  # the child's progress comes through
    crashed, trained = store.load(tmp_path / "results").to_dict("records")
    assert crashed["status"] == "error"
    assert "killed by signal SIGSEGV" in crashed["reason"]
    assert "about to update" in crashed["reason"]
    assert trained["status"] == "ok" and trained["test_acc"] > 0.5
    assert len(trained["seconds_by_epoch"]) == 1
    assert not (tmp_path / "w-fault-segv-train.npz").exists()
    train.load_weights(tmp_path / "w-numpy.npz", (64, 32, 10))  # saved by the child, and fits


def test_command_stores_one_row_per_impl_and_saves_weights(tmp_path, fake_registry, capsys):
    digits()
    code = run_train(
        tmp_path, "--impl", "numpy,norelu", "--impl", "absent", "--save", str(tmp_path / "w.npz")
    )
    out = capsys.readouterr().out
    assert code == 0, out
    table = store.load(tmp_path / "results")
    assert list(table.impl) == ["numpy", "norelu", "absent"]
    assert list(table.status) == ["ok", "unsupported", "unavailable"]
    assert set(table.workload) == {"train"} and set(table.phase) == {"train"}
    row = table.iloc[0]
    assert row["size"] == "dataset=digits layers=64-32-10 B=32 opt=sgd epochs=2"
    assert len(row.loss_by_epoch) == len(row.test_acc_by_epoch) == len(row.seconds_by_epoch) == 2
    assert np.array(row.confusion_CC).shape == (10, 10)
    assert np.array(row.confusion_CC).sum() == row.n_test == 359
    assert row.test_acc == row.test_acc_by_epoch[-1]
    assert row.wall_s > row.train_s == pytest.approx(sum(row.seconds_by_epoch))
    assert sum(row.weight_hist["w0_IO"]["counts"]) == 64 * 32
    assert table.iloc[1].reason == "norelu does not implement relu"
    assert "no such device here" in table.iloc[2].reason
    assert "accuracy spread over 1 impl(s) that trained: 0.00 points" in out
    weights = train.load_weights(tmp_path / "w-numpy.npz", (64, 32, 10))
    assert not (tmp_path / "w-norelu.npz").exists()
    # Loading them with --epochs 0 evaluates the same accuracy.
    code = run_train(
        tmp_path, "--impl", "numpy", "--epochs", "0", "--load", str(tmp_path / "w-numpy.npz")
    )
    assert code == 0
    table = store.load(tmp_path / "results")
    latest = table[table.epochs == 0].iloc[0]
    assert latest.test_acc == row.test_acc and weights["w0_IO"].shape == (64, 32)


def test_command_fails_when_accuracies_spread(tmp_path, fake_registry, capsys):
    code = run_train(tmp_path, "--impl", "numpy,flipped")
    captured = capsys.readouterr()
    assert code == 1
    assert "FAILED: final test accuracies spread" in captured.err
    table = store.load(tmp_path / "results")
    assert list(table.status) == ["ok", "ok"]
    assert checks.spread_pp(table.to_dict("records")) > checks.SPREAD_LIMIT_PP


def test_command_fails_when_an_impl_crashes(tmp_path, fake_registry, capsys):
    code = run_train(tmp_path, "--impl", "numpy,crashing")
    assert code == 1
    assert "FAILED: crashing raised an error" in capsys.readouterr().err
    row = store.load(tmp_path / "results").iloc[1]
    assert row.status == "error" and row.reason == "RuntimeError: kernel launch failed"


def test_command_all_trains_every_registered_impl(tmp_path, fake_registry):
    assert run_train(tmp_path, "--impl", "all", "--epochs", "1") == 1  # flipped, crashing
    table = store.load(tmp_path / "results")
    assert list(table.impl) == ["numpy", "flipped", "crashing", "norelu", "absent"]
    assert list(table.status) == ["ok", "ok", "error", "unsupported", "unavailable"]


def test_command_says_what_does_not_fit(tmp_path, fake_registry, capsys):
    code = run_train(tmp_path, "--layers", "60-10")
    assert code == 2
    assert "MLP 60-10 does not fit dataset digits" in capsys.readouterr().err
    code = run_train(tmp_path, "--dataset", "mnist")
    assert code == 2
    assert "--dataset mnist needs --mnist DIR" in capsys.readouterr().err
    code = run_train(tmp_path, "--dataset", "synthetic", "--mnist", str(tmp_path))
    assert code == 2
    assert "but --dataset says synthetic: drop one of them" in capsys.readouterr().err
    code = run_train(tmp_path, "--mnist", str(tmp_path / "nowhere"))
    assert code == 2
    assert "nowhere: not a folder" in capsys.readouterr().err
    assert not (tmp_path / "results").exists()  # nothing is stored before the inputs are right


def test_layers_come_from_the_dataset_and_hidden():
    data = subset(digits(), 10, 10)
    parser = cli.build_parser()
    args = parser.parse_args(["train", "--hidden", "20,12"])
    assert plan.layers_for(args, data) == (64, 20, 12, 10)
    args = parser.parse_args(["train"])
    assert plan.layers_for(args, data) == (64, 32, 10)
    with pytest.raises(ValueError, match="--layers must be widths joined by '-'"):
        plan.layers_for(parser.parse_args(["train", "--layers", "64x10"]), data)


# ---- the report's figures -----------------------------------------------------------------


def test_report_has_no_training_figures_without_training_rows(tmp_path):
    assert train_report.figures(store.load(tmp_path)) == []  # empty table, schema only
    other = store.load(tmp_path).reindex([0]).assign(workload="matmul", phase="fwd", status="ok")
    assert train_report.figures(other) == []


def test_report_draws_the_newest_training_runs_figures(tmp_path, fake_registry):
    digits()
    assert run_train(tmp_path, "--impl", "numpy", "--hidden", "8", "--epochs", "1") == 0
    assert run_train(tmp_path, "--impl", "numpy", "--epochs", "0") == 0  # evaluation only
    assert run_train(tmp_path, "--impl", "numpy,flipped,absent", "--target-acc", "0.5") == 1
    drawn = dict(train_report.figures(store.load(tmp_path / "results")))
    names = [title.split(":")[0] for title in drawn]
    assert all("layers=64-32-10" in title for title in drawn), names  # the newest run's
    for name in ("Learning curves", "Time to accuracy", "Weight histograms", "Confusion matrix"):
        assert name in names
    for name in ("Weights by epoch", "Activations by epoch", "Gradient flow"):
        assert name in names  # from the fields train stores for them
    figures = {name: figure for name, figure in zip(names, drawn.values(), strict=True)}
    curves = figures["Learning curves"]
    assert [line.get_label() for line in curves.axes[0].get_lines()] == ["numpy", "flipped"]
    labels = [text.get_text() for text in figures["Time to accuracy"].axes[0].texts]
    assert labels[0].endswith("epoch 1") and labels[1] == " target not reached"
    assert "numpy: test accuracy" in figures["Confusion matrix"].axes[0].get_title()
    for figure in drawn.values():
        figure.savefig(tmp_path / "figure.png")
        assert (tmp_path / "figure.png").stat().st_size > 1000


def test_report_renders_results_of_training_alone(tmp_path, fake_registry, monkeypatch):
    """A results folder where only `train` has run: no timing cells, the training figures."""
    digits()
    monkeypatch.setattr(
        ceilings,
        "measure",
        lambda: {
            "machine": machine.machine_name(),
            "measured_at": "2026-01-01T00:00:00+00:00",
            "gemm_gflops_per_s": 100.0,
            "copy_gb_per_s": 10.0,
            "gemm_n": 2048,
            "copy_bytes": 1 << 28,
            "cpu": "test",
            "gpu": "",
            "blas": "test",
            "threads": 1,
        },
    )
    assert run_train(tmp_path, "--impl", "numpy") == 0
    out = tmp_path / "summary.html"
    assert cli.main(["report", "--results", str(tmp_path / "results"), "--out", str(out)]) == 0
    html = out.read_text()
    assert "Learning curves" in html and "Confusion matrix" in html
    assert ">train<" not in html


def test_command_names_a_weights_file_cut_short_in_one_line(tmp_path, fake_registry, capsys):
    path = train.save_weights(tmp_path / "w.npz", train.init_weights((64, 32, 10), 0))
    path.write_bytes(path.read_bytes()[:-100])
    assert run_train(tmp_path, "--load", str(path), "--epochs", "0") == 2
    err = capsys.readouterr().err
    assert f"error: {path}: cannot read it as an npz of weights" in err
    assert "Traceback" not in err and not (tmp_path / "results").exists()


def test_an_unwritable_save_path_fails_before_training(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    assert (
        cli.main(
            [
                "train",
                "--epochs",
                "50",
                "--save",
                str(blocker / "w.npz"),
                "--results",
                str(tmp_path / "results"),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "a-file" in err and "epoch" not in err
    assert not list((tmp_path / "results").glob("*/*.jsonl"))
