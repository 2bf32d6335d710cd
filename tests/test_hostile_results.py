"""Results from anywhere: machine names that are not folders, results files that are not
tables of rows, runs where nothing ran, impl names that are matplotlib markup. Each is named
and skipped, refused or drawn as written; none crashes load, report or compare."""

from __future__ import annotations

import ast
import io
import json
import re
import warnings

import numpy as np
import pandas as pd
import pytest
from matplotlib import cbook

from harness import cli
from harness.report import plots, training
from harness.report import summary as report
from harness.results import ceilings, machine, store
from harness.train import loop as train
from harness.train import scores
from tests.test_report import CEILINGS, row

# Impl names an out-of-tree impl (NNLADDER_IMPLS) may have: each is mathtext, or breaks it.
MARKUP = ["fake$impl$", "a$^$b", r"$\frac{$", "x$_{$", "c_naive^2$"]


@pytest.fixture
def fresh_machine_info():
    machine.info.cache_clear()
    yield
    machine.info.cache_clear()


@pytest.mark.parametrize("name", ["", ".", "..", "...", "../up", "a/b", "/abs", "a b", "x" * 65])
def test_a_machine_name_that_is_not_one_folder_is_refused(
    tmp_path, monkeypatch, name, fresh_machine_info
):
    monkeypatch.setenv("NNLADDER_MACHINE", name)
    with pytest.raises(
        ValueError,
        match=re.escape(
            f"NNLADDER_MACHINE={name!r} is not a machine name: expected 1 to 64 letters"
        ),
    ):
        store.open_run(tmp_path / "results")
    assert list(tmp_path.iterdir()) == []  # nothing written, inside results/ or beside it


@pytest.mark.parametrize("name", ["github-ubuntu-latest", "box.local", "A_1"])
def test_a_machine_name_that_is_a_folder_is_used(monkeypatch, name):
    monkeypatch.setenv("NNLADDER_MACHINE", name)
    assert machine.machine_name() == name


@pytest.mark.parametrize(
    ("host", "folder"), [("..", "unknown"), ("", "unknown"), ("my host/1", "my-host-1")]
)
def test_a_host_name_is_made_a_folder(monkeypatch, host, folder):
    monkeypatch.delenv("NNLADDER_MACHINE", raising=False)
    monkeypatch.setattr(machine.socket, "gethostname", lambda: host)
    assert machine.machine_name() == folder


def good(impl, n, run="run-head", **extra):
    return {**row(impl, n, seconds=1e-3 * n, run=run), "samples_s": [1e-3 * n] * 5, **extra}


HOSTILE = [  # (line, what load says of it)
    ("[1, 2]", "line 2: [1, 2] is not a row"),
    ('"x"', 'line 3: "x" is not a row'),
    ("null", "line 4: null is not a row"),
    ("{not json", "line 5: not a JSON line"),
    (json.dumps(good("numpy", 2, timestamp=5)), "line 6: timestamp 5 read as '5'"),
    (json.dumps(good("numpy", 3, t_median_s="0.5")), "line 7: t_median_s '0.5' read as 0.5"),
    (
        json.dumps(good("numpy", 4, t_median_s="fast")),
        "line 8: t_median_s 'fast' is not a number: dropped",
    ),
    (
        json.dumps(good("numpy", 5, status=["ok"])),
        "line 9: status ['ok'] is not text: dropped; no status: row skipped",
    ),
    (
        json.dumps(good("numpy", 6, samples_s=["a"], dirty="yes", flops=[1])),
        "line 10: flops [1] is not a number: dropped; samples_s ['a'] is not a list of numbers: "
        "dropped; dirty 'yes' is not true or false: dropped",
    ),
    ("[" * 100_000, "line 11: not a JSON line"),
    (b"\xff\xfe{}", "line 12: not a JSON line"),
    ('{"impl": 7}', "line 13: impl 7 read as '7'; no status: row skipped"),
    (
        '{"impl": "numpy", "status": "fine"}',
        "line 14: status 'fine' is not one of ok, wrong, unsupported, unavailable, over_budget, "
        "error: row skipped",
    ),
    ('{"impl": "numpy", "status": "ok", "run_id": "run-head"}', None),  # kept: NaN elsewhere
]


@pytest.fixture
def hostile_results(tmp_path):
    """One run file of good rows around every kind of bad line, and a base run to compare."""
    ceilings.write(CEILINGS, tmp_path)
    base = store.RunWriter("run-base", machine.machine_name(), tmp_path)
    for n in range(1, 8):
        base.append(good("numpy", n, run="run-base", timestamp="run-base"))
    lines = (
        [json.dumps(good("numpy", 1))]
        + [line for line, _ in HOSTILE]
        + [json.dumps(good("numpy", 7))]
    )
    path = tmp_path / machine.machine_name() / "run-head.jsonl"
    path.write_bytes(b"\n".join(x if isinstance(x, bytes) else x.encode() for x in lines))
    return tmp_path, path


def test_every_bad_line_is_named_and_the_good_rows_load(hostile_results):
    root, path = hostile_results
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = store.load(root)
    said = [str(w.message) for w in caught]
    for _, message in filter(lambda hostile: hostile[1], HOSTILE):
        assert any(m.startswith(f"{path} {message}") for m in said), (message, said)
    head = table[table.run_id == "run-head"].set_index("M")
    assert list(head.index.dropna()) == [1, 2, 3, 4, 6, 7]  # rows without a status: skipped
    assert head.index.isna().sum() == 1 and len(said) == len(HOSTILE) - 1
    assert head.loc[2, "timestamp"] == "5" and head.loc[3, "t_median_s"] == 0.5
    assert np.isnan(head.loc[4, "t_median_s"]) and head.loc[6, "samples_s"] is None
    assert table["t_median_s"].dtype == float


def test_report_and_compare_take_a_hostile_file(hostile_results, tmp_path, capsys):
    root, _ = hostile_results
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = report.render(store.load(root), tmp_path / "out.html", root)
        code = cli.main(["compare", "run-base", "run-head", "--results", str(root)])
    assert "<h2>Headline" in out.read_text()
    assert code in (0, 1) and "M=7" in capsys.readouterr().out


def stored_and_rendered(tmp_path, rows):
    ceilings.write(CEILINGS, tmp_path)
    writer = store.RunWriter("r1", machine.machine_name(), tmp_path)
    for r in rows:
        writer.append({k: v for k, v in r.items() if not (isinstance(v, float) and np.isnan(v))})
    return report.render(store.load(tmp_path), tmp_path / "summary.html", tmp_path).read_text()


def test_a_run_where_nothing_ran_ok_renders_with_its_statuses(tmp_path):
    html = stored_and_rendered(
        tmp_path,
        [
            row("numpy", 64, status="unavailable", reason="no BLAS"),
            row("c", 64, status="error", reason="killed by signal SIGSEGV"),
            row(MARKUP[0], 64, status="wrong", reason="rel err 0.5", rel_err=0.5),
            row("c", 64, "bwd", status="unsupported", reason="c does not implement matmul"),
        ],
    )
    for status in ("unavailable", "error", "wrong", "unsupported"):
        assert f'class="l {status}">{status}<' in html
    assert "Nothing ran ok yet: no figures." in html and "killed by signal SIGSEGV" in html
    assert f'<td class="l">{MARKUP[0]}</td>' in html


def test_impl_names_that_are_mathtext_are_drawn_as_written(tmp_path):
    rows = [
        good(name, n, run=run, commit=commit, timestamp=run) | {"phase": phase}
        for name in [*MARKUP, "numpy", "pure_python"]
        for n in (64, 128)
        for run, commit in (("r0", "b" * 40), ("r1", "a" * 40))
        for phase in ("fwd", "bwd")
    ]
    html = stored_and_rendered(tmp_path, rows)
    assert len(re.findall(r'<img src="data:image/png', html)) == 6
    cells = report.latest(store.load(tmp_path))
    fig = plots.roofline(cells, report.ladder_order(cells.impl), CEILINGS)
    fig.savefig(io.BytesIO(), format="png")
    assert set(MARKUP) <= set(drawn_as_written(fig.axes[0].get_legend().get_texts()))


def drawn_as_written(texts) -> list:
    """What matplotlib shows of each text: no mathtext, the escaped `$` drawn as `$`."""
    labels = [t.get_text() for t in texts]
    assert not any(cbook.is_math_text(label) for label in labels)
    return [label.replace(r"\$", "$") for label in labels]


def test_training_figures_draw_mathtext_names_as_written():
    weights = train.init_weights((4, 3, 2), 0)
    result = train.Result(
        loss_by_epoch=[1.0, None],
        train_acc_by_epoch=[0.5, 0.75],
        test_acc_by_epoch=[0.5, 0.5],
        seconds_by_epoch=[0.1, 0.1],
        test=scores.metrics([0, 1], [0, 0], 2),
        weights=weights,
    )
    rows = pd.DataFrame(
        [
            {
                "impl": name,
                "workload": "train",
                "phase": "train",
                "status": "ok",
                "machine": "box$x_$",
                "size": "layers=4-3-2 $^$",
                "timestamp": "t",
                "target_acc": 0.5,
                "t_median_s": 0.1,
                **scores.result_fields(result),
            }
            for name in MARKUP
        ]
    )
    drawn = training.figures(rows)
    assert len(drawn) == 4
    for _, fig in drawn:
        fig.savefig(io.BytesIO(), format="png")
    assert drawn_as_written(drawn[0][1].axes[0].get_legend().get_texts()) == MARKUP


def test_training_rows_with_values_of_the_wrong_type_are_left_out_of_the_figures():
    rows = pd.DataFrame(
        [
            {
                "impl": "numpy",
                "workload": "train",
                "phase": "train",
                "status": "ok",
                "machine": "box",
                "size": "s",
                "timestamp": "t",
                "rounds": 1,
                "target_acc": 0.5,
                "test_acc": 0.5,
                "loss_by_epoch": None,
                "weight_hist": None,
                "confusion_CC": None,
            }
        ]
    )
    assert training.figures(rows) == []


def test_the_figures_borrow_no_shape_letters():
    """A shape suffix says what each axis of an array is (contract.DIMS): the figures' own
    arrays (an intensity range, a span of seconds or bytes) are no axes of the model."""
    tree = ast.parse(open(plots.__file__).read())
    names = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    assert sorted(n for n in names if re.fullmatch(r"[a-z][a-z0-9_]*_[A-Z]+", n)) == []


def test_cli_says_in_one_line_that_results_cannot_be_written(tmp_path, capsys):
    results = tmp_path / "results"
    results.write_text("notes\n")
    code = cli.main(
        [
            "run",
            "--results",
            str(results),
            "--impl",
            "numpy",
            "--workload",
            "xor",
            "--phase",
            "fwd",
            "--quick",
            "--in-process",
            "--no-report",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert f"error: cannot make the folder {results}/" in err
    assert f"{results} is a file, not a folder" in err and results.read_text() == "notes\n"
