"""Figures, the text table, and the saved report (PNG, CSV, self-contained HTML)."""

from __future__ import annotations

import base64
import re

import pandas as pd
import pytest
import tensorflow as tf
from IPython.core.formatters import PNGFormatter

import nbreplica
from nbreplica.bench.plots import EMULATED_NOTE
from nbreplica.bench.result import SweepResult
from nbreplica.bench.stats import summarize

from sweep_helpers import QUICK, tiny_data, tiny_model

PNG = b"\x89PNG\r\n\x1a\n"
EVIL = "<script>alert('x')</script>"


def test_scaling_figure(side_by_side):
    figure = side_by_side.plot()
    speedup, efficiency, throughput = figure.axes
    assert (speedup.get_title(), speedup.get_xlabel(), speedup.get_ylabel()) == (
        "Speedup vs 1 device", "devices", "speedup (×)")
    assert efficiency.get_ylabel() == "efficiency (%)"
    assert throughput.get_ylabel() == "samples / s"
    title = figure.get_suptitle()
    assert "tiny · global batch 32 (strong scaling) · split vs mirrored" in title
    assert "95% confidence intervals" in title
    assert EMULATED_NOTE in [text.get_text() for text in figure.texts]
    labels = speedup.get_legend_handles_labels()[1]
    assert labels[0] == "ideal (linear)"
    assert {"split", "mirrored"} <= set(labels)
    ideal = speedup.get_lines()[0]
    assert list(ideal.get_xdata()) == pytest.approx(list(ideal.get_ydata()))
    # A notebook shows it as an image even where pyplot was never imported.
    assert PNGFormatter()(figure).startswith(PNG)


def test_text_table(side_by_side):
    table = side_by_side.table()
    header, *rows = table.splitlines()
    assert header.split()[:4] == ["strategy", "devices", "samples/s", "speedup"]
    assert rows[0].split()[:2] == ["single", "1"]
    assert "1.00 [1.00–1.00]" in rows[0]
    assert any(line.startswith("split: amdahl serial fraction") for line in rows)
    assert "recommended devices" in table


def test_save_writes_every_file(side_by_side, tmp_path):
    paths = side_by_side.save(tmp_path / "report")
    assert set(paths) == {"summary", "runs", "scaling", "report"}  # no device counters
    for path in paths.values():
        assert path.stat().st_size > 0
    assert paths["scaling"].read_bytes().startswith(PNG)
    summary = pd.read_csv(paths["summary"])
    assert list(summary["devices"]) == list(side_by_side.frame["devices"])
    assert len(pd.read_csv(paths["runs"])) == 15
    page = paths["report"].read_text()
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == 1 and base64.b64decode(images[0]).startswith(PNG)
    assert not re.search(r'(src|href)="(?!data:)', page)  # self-contained
    assert side_by_side.sweep_id in page and tf.__version__ in page


def test_html_escapes_every_user_string(side_by_side, tmp_path):
    runs = side_by_side.runs.assign(sweep_name=EVIL, model=EVIL, device_names=EVIL,
                                    host=EVIL)
    result = SweepResult(runs, side_by_side.samples, name=EVIL,
                         sweep_id=side_by_side.sweep_id,
                         results_path=tmp_path / f"{EVIL}.sqlite", planned_points=15)
    page = result.save(tmp_path / "evil")["report"].read_text()
    assert "<script" not in page
    assert page.count("&lt;script&gt;") >= 6


def test_comparison_of_two_stored_sweeps(tmp_path):
    x, y = tiny_data()
    for batch in (16, 48):
        nbreplica.sweep(tiny_model, x, y, devices=(1, 2), batch_size=batch, repeats=2,
                        name=f"batch {batch}", **QUICK)
    stored = nbreplica.load_results()
    figure = nbreplica.plot_comparison(stored)
    labels = figure.axes[0].get_legend_handles_labels()[1]
    assert {"batch 16 · split", "batch 48 · split"} <= set(labels)
    assert "global batch 16 / 48" in figure.get_suptitle()
    # Summaries (SweepResult.frame) are accepted as well as stored runs.
    summaries = summarize(stored)
    assert nbreplica.plot_comparison(summaries).axes[0].get_legend_handles_labels()[1] == labels
