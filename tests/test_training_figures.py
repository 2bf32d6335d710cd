"""The training sections of the report: one per model (MLP, CNN, GPT) from its newest run, each
figure drawn from the fields `train` stores (histograms by epoch, gradient norms, filters, the
GPT's losses and sample), nothing drawn and nothing failing where rows lack them or hold junk,
and the sample shown escaped in a page that renders end to end."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_hex

from harness.report import summary as report
from harness.report import training, training_layers
from harness.results import ceilings, machine, store
from tests.report_tables import CEILINGS, training_row

EPOCHS = [0, 1, 2]  # the epochs the histograms are taken at: first, middle, last
SAMPLE = "To be <b>or</b> not & \"to\" be\x00</pre><script>alert('x')</script>"
LAYERS = {
    "mlp": (["w0_IO", "w1_IO"], ["h0_BH", "logits_BC"]),
    "cnn": (["w1_FQJL", "w2_FQJL", "w3_IO"], ["conv1", "conv2", "logits"]),
    "gpt": (["wte_VD", "wpe_TD", "h0_wq_DD", "h0_wfc_DH"], ["h0_out", "logits"]),
}


def by_epoch(names: list, seed: int) -> dict:
    """{name: [{epoch, edges, counts}]}: values that spread out epoch by epoch."""
    rng = np.random.default_rng(seed)
    out = {}
    for i, name in enumerate(names):
        out[name] = []
        for epoch in EPOCHS:
            counts, edges = np.histogram(rng.normal(0, 0.1 * (1 + epoch + i), 200), bins=20)
            out[name].append({"epoch": epoch, "edges": edges.tolist(), "counts": counts.tolist()})
    return out


def model_row(model: str, impl: str, run: str = "r5") -> dict:
    """A row of `model` with every field the report draws from, as `train` stores it."""
    weights, outputs = LAYERS[model]
    row = {
        **training_row(impl, 0.9, run),
        "model": model,
        "size": f"model={model} dataset=digits B=32 opt=adam epochs=3",
        "weight_hist_by_epoch": by_epoch(weights, 0),
        "act_hist_by_epoch": by_epoch(outputs, 1),
        "grad_norm_by_epoch": {
            name: [10.0 ** -(i + e) for e in range(3)] for i, name in enumerate(weights)
        },
    }
    if model == "cnn":
        row["filters_FQJL"] = np.random.default_rng(2).normal(size=(6, 1, 3, 3)).tolist()
    if model == "gpt":
        for field in ("train_acc_by_epoch", "test_acc_by_epoch", "confusion_CC", "target_acc"):
            del row[field]  # a language model has no classes to score
        del row["weight_hist"]
        row |= {
            "val_loss_by_epoch": [3.0, 2.5, 2.4],
            "loss_by_step": list(np.linspace(4.0, 2.2, 12)),
            "tokens_per_s": 12345.6 if impl == "numpy" else 2345.6,
            "sample": SAMPLE,
        }
    return row


def model_rows() -> pd.DataFrame:
    """Two impls of each model in run r5, and an older MLP run (r4) the report leaves out."""
    old = {**model_row("mlp", "numpy", "r4"), "size": "an older configuration"}
    rows = [model_row(m, impl) for m in LAYERS for impl in ("numpy", "c")]
    return pd.DataFrame([old, *rows])


@pytest.fixture(scope="module")
def drawn():
    return dict(training.figures(model_rows(), ["numpy", "c"]))


def of(drawn: dict, name: str, model: str):
    return next(fig for title, fig in drawn.items() if title.startswith(f"{name}: {model} "))


def test_each_model_gets_a_section_of_its_newest_run_with_the_figures_it_has_fields_for(drawn):
    sections = training.sections(model_rows())
    assert [s["anchor"] for s in sections] == ["training-mlp", "training-cnn", "training-gpt"]
    assert all("run r5, 2 impl(s): numpy, c" in s["about"] for s in sections)
    names = {
        model: [title.split(":")[0] for title in drawn if title.split(": ")[1].startswith(model)]
        for model in ("MLP", "CNN", "GPT")
    }
    per_layer = ["Weights by epoch", "Activations by epoch", "Gradient flow"]
    assert names["MLP"] == ["Learning curves", "Time to accuracy", "Weight histograms"] + [
        *per_layer,
        "Confusion matrix",
    ]
    assert names["CNN"] == names["MLP"][:-1] + ["First-layer filters", "Confusion matrix"]
    assert names["GPT"] == ["Loss curves", *per_layer]
    assert not [title for title in drawn if "older configuration" in title]


def test_histograms_by_epoch_draw_a_panel_per_layer_and_an_outline_per_epoch(drawn):
    for name, field in (("Weights by epoch", 0), ("Activations by epoch", 1)):
        fig = of(drawn, name, "CNN")
        panels = [ax for ax in fig.axes if ax.get_visible()]
        assert [ax.get_title() for ax in panels] == LAYERS["cnn"][field]
        ramp = [to_hex(c) for c in training_layers.ramp(len(EPOCHS))]
        for ax in panels:
            assert [to_hex(p.get_edgecolor()) for p in ax.patches] == ramp  # first epoch dark
        legend = panels[-1].get_legend()
        assert [t.get_text() for t in legend.get_texts()] == ["epoch 0", "epoch 1", "epoch 2"]
        assert "numpy" in fig.get_suptitle()  # the row that stands for the rungs is named


def test_gradient_flow_is_a_line_per_layer_input_to_output_on_a_log_axis(drawn):
    ax = of(drawn, "Gradient flow", "GPT").axes[0]
    assert ax.get_yscale() == "log"
    assert [line.get_label() for line in ax.get_lines()] == LAYERS["gpt"][0]  # input first
    assert [to_hex(line.get_color()) for line in ax.get_lines()] == [
        to_hex(c) for c in training_layers.ramp(4)
    ]
    assert list(ax.get_lines()[1].get_ydata()) == pytest.approx([0.1, 0.01, 0.001])
    gaps = training_layers.norms({"a": [1.0, 0.0, None, float("inf")], "dead": [0.0, 0.0]})
    assert list(gaps) == ["a"] and np.isnan(gaps["a"][1:]).all()  # a log axis cannot draw them


def test_the_filters_are_images_each_on_its_own_scale_symmetric_about_zero(drawn):
    w_FQJL = np.array(model_row("cnn", "numpy")["filters_FQJL"])
    images = [ax.images[0] for ax in of(drawn, "First-layer filters", "CNN").axes if ax.images]
    assert len(images) == 6
    for f, image in enumerate(images):
        scale = np.abs(w_FQJL[f]).max()
        assert image.get_clim() == pytest.approx((-scale, scale))
        assert image.get_cmap().name.startswith("RdBu_r")
    rgb = {**model_row("cnn", "c"), "filters_FQJL": np.ones((2, 3, 5, 5)).tolist()}
    fig = training_layers.filter_images("t", pd.DataFrame([rgb]), {})
    tiles = fig.axes[0].images[0].get_array()
    assert tiles.shape == (5, 17) and tiles.mask[:, [5, 11]].all()  # channels, a gap apart


def test_the_gpt_loss_curves_draw_steps_and_validation_per_impl_with_its_speed(drawn):
    ax = of(drawn, "Loss curves", "GPT").axes[0]
    steps, val = ax.get_lines()[:2]
    assert steps.get_xdata()[-1] == pytest.approx(3.0)  # the last step ends the last epoch
    assert list(val.get_xdata()) == [1, 2, 3] and list(val.get_ydata()) == [3.0, 2.5, 2.4]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["numpy (12,346 tokens/s)", "c (2,346 tokens/s)"]


JUNK = {
    "model": 7,  # not a name: an MLP's
    "weight_hist_by_epoch": {"w0_IO": "many"},
    "act_hist_by_epoch": [1, 2],
    "grad_norm_by_epoch": {"w0_IO": ["big"], "w1_IO": None},
    "filters_FQJL": [[1, 2], [3]],
    "val_loss_by_epoch": "low",
    "loss_by_step": [[1.0]],
    "tokens_per_s": "fast",
    "sample": 12,
}


@pytest.mark.parametrize("fields", [{}, JUNK], ids=["older rows", "junk"])
def test_rows_without_the_new_fields_draw_only_the_figures_they_have_fields_for(fields):
    rows = pd.DataFrame([{**training_row(impl, 0.9), **fields} for impl in ("numpy", "c")])
    titles = [title.split(":")[0] for title, _ in training.figures(rows)]
    assert titles == [
        "Learning curves",
        "Time to accuracy",
        "Weight histograms",
        "Confusion matrix",
    ]
    assert [s["anchor"] for s in training.sections(rows)] == ["training-mlp"]
    assert training.sections(rows)[0]["samples"] == []


def test_one_malformed_epoch_is_left_out_and_the_rest_drawn():
    row = model_row("mlp", "numpy")
    first, *rest = row["weight_hist_by_epoch"]["w0_IO"]
    row["weight_hist_by_epoch"]["w0_IO"] = [{**first, "edges": [None] * 21}, *rest]
    read = training_layers.histograms(row["weight_hist_by_epoch"])
    assert [epoch for epoch, _, _ in read["w0_IO"]] == [1, 2]
    assert len(read["w1_IO"]) == 3


def test_a_long_sample_is_cut_and_control_characters_are_marked():
    assert training.sample("a\x00b\nc\td") == "a\ufffdb\nc\td"
    assert training.sample("x" * 5000) == "x" * training.SAMPLE_CHARS + " [...]"
    assert training.sample("  ") is None


def test_the_page_renders_each_section_with_captions_and_the_sample_escaped(tmp_path):
    ceilings.write(CEILINGS, tmp_path)
    writer = store.RunWriter("r5", machine.machine_name(), tmp_path)
    for row in model_rows().to_dict("records"):
        writer.append({k: v for k, v in row.items() if not (isinstance(v, float) and np.isnan(v))})
    html = report.render(store.load(tmp_path), tmp_path / "summary.html", tmp_path).read_text()
    heads = re.findall(r'<h2 id="(training-\w+)">Training: (\w+)</h2>', html)
    assert heads == [("training-mlp", "MLP"), ("training-cnn", "CNN"), ("training-gpt", "GPT")]
    figures = re.findall(r"<figcaption><b>([^<]+)</b>\. ([^<]+)</figcaption><img", html)
    assert len(figures) == 7 + 8 + 4 and all(len(caption) > 40 for _, caption in figures)
    assert "<script" not in html and "<b>or</b>" not in html
    assert (
        "To be &lt;b&gt;or&lt;/b&gt; not &amp; &#34;to&#34; be\ufffd&lt;/pre&gt;"
        "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"
    ) in html
    gpt = html[html.index('<h2 id="training-gpt">') :]
    assert gpt.count("<pre>") == 2 and '<p class="muted">c</p>' in gpt
