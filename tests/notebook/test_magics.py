"""The %%replicate, %nbreplica_devices and %nbreplica_report magics in an IPython shell
(8 emulated GPUs: see tests/conftest.py)."""

from __future__ import annotations

import re

import keras
import numpy as np
import pytest
import tensorflow as tf
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output
from ipywidgets.widgets.tests.utils import setup_test_comm, teardown_test_comm

import nbreplica
from nbreplica.bench.store import RESULTS_ENV_VAR, ResultsStore
from nbreplica.strategy import placements as routing
from nbreplica._keras_compat.routed_methods import ROUTED_METHODS
from nbreplica.notebook.magics import ReplicateMagics
from nbreplica.testing import GIB, fake_nvml, plausible_gpus

SETUP = """
import keras, numpy as np, nbreplica, tensorflow as tf

def build(name="mlp", compiled=True):
    model = keras.Sequential(
        [keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(2)],
        name=name)
    if compiled:
        model.compile("sgd", "mse")
    return model

rng = np.random.default_rng(0)
x = rng.standard_normal((100, 8), dtype=np.float32)
y = rng.standard_normal((100, 2), dtype=np.float32)
"""


@pytest.fixture(autouse=True)
def clean(shell, tmp_path, monkeypatch):
    """A fresh namespace, a private results file, and no device selection."""
    monkeypatch.setenv(RESULTS_ENV_VAR, str(tmp_path / "results.sqlite"))
    shell.reset(new_session=False)
    assert shell.run_cell(SETUP).success
    nbreplica.use_devices(None)
    yield
    nbreplica.use_devices(None)
    assert not any(name in keras.Model.__dict__ for name in ROUTED_METHODS)


@pytest.fixture
def magics(shell) -> ReplicateMagics:
    return shell.magics_manager.registry["ReplicateMagics"]


def run(shell, line: str, body: str):
    """Run a %%replicate cell as a notebook would; returns (result, captured output)."""
    with capture_output() as captured:
        result = shell.run_cell(f"%%replicate {line}\n{body}")
    return result, captured


def shown(captured) -> str:
    """Everything a terminal would show: printed text, then displays as plain text."""
    return captured.stdout + "".join(o.data["text/plain"] + "\n" for o in captured.outputs)


def devices_of(model) -> list[str]:
    return model.devices if isinstance(model, nbreplica.ReplicatedModel) else []


def test_load_and_unload_the_extension(shell):
    for kind, name in (("cell", "replicate"), ("line", "nbreplica_devices"),
                       ("line", "nbreplica_report")):
        assert name in shell.magics_manager.magics[kind]
    shell.run_line_magic("unload_ext", "nbreplica")
    assert "replicate" not in shell.magics_manager.magics["cell"]
    assert "nbreplica_report" not in shell.magics_manager.magics["line"]
    shell.run_line_magic("load_ext", "nbreplica")
    assert "replicate" in shell.magics_manager.magics["cell"]


def test_help_shows_every_flag_and_the_rules(shell):
    with capture_output() as captured:
        shell.run_cell("%%replicate?")
    help_text = captured.stdout
    for flag in ("--gpus IDS", "-n N", "--strategy {split,mirrored}", "--shares SHARES",
                 "--sweep COUNTS",
                 "--repeats N", "--name NAME", "--monitor", "--quiet"):
        assert flag in help_text
    for rule in ("Rules of ``--strategy split``", "Rules of ``--strategy mirrored``",
                 "shares its optimizer object", "Models must be built inside the cell",
                 "ReductionToOneDevice", "With one device"):
        assert rule in help_text


def test_split_trains_a_model_built_before_the_cell_through_a_replica(shell):
    shell.run_cell("model = build(); model.fit(x, y, epochs=1, verbose=0)\n"
                   "before = [w.numpy().copy() for w in model.weights]\n"
                   "steps_before = int(model.optimizer.iterations.numpy())")
    result, captured = run(shell, "-n 4", "history = model.fit(x, y, epochs=2, verbose=0)\n"
                                          "inside = nbreplica.selected_devices()")
    assert result.success, captured.stdout
    ns = shell.user_ns
    trained = ns["history"].model
    assert isinstance(trained, nbreplica.ReplicatedModel)
    assert trained.template is ns["model"]
    assert trained.optimizer is ns["model"].optimizer
    assert devices_of(trained) == [f"/device:CPU:{i}" for i in (1, 2, 3, 4)]
    assert ns["inside"] == (0, 1, 2, 3)
    assert nbreplica.selected_devices() is None
    # Optimizer state carried on: 4 steps per epoch (100 rows, batch 32), 2 epochs.
    assert int(ns["model"].optimizer.iterations.numpy()) == ns["steps_before"] + 8
    assert any(not np.allclose(a, w.numpy()) for a, w in zip(ns["before"], ns["model"].weights))


def test_split_routes_evaluate_and_predict_and_reuses_one_replica(shell, monkeypatch):
    made = []
    monkeypatch.setattr(routing, "replicate",
                        lambda model, gpus: made.append(gpus) or nbreplica.replicate(model, gpus))
    shell.run_cell("model = build()\nplain_loss = model.evaluate(x, y, verbose=0)\n"
                   "plain_pred = model.predict(x, verbose=0)")
    result, captured = run(shell, "--gpus 0,2,5",
                           "loss = model.evaluate(x, y, verbose=0)\n"
                           "pred = model.predict(x, verbose=0)\n"
                           "uncompiled = build('raw', compiled=False).predict(x, verbose=0)")
    assert result.success, captured.stdout
    ns = shell.user_ns
    assert made == [[0, 2, 5], [0, 2, 5]]  # one replica for `model`, one for 'raw'
    np.testing.assert_allclose(ns["loss"], ns["plain_loss"], rtol=1e-5)
    np.testing.assert_allclose(ns["pred"], ns["plain_pred"], rtol=1e-5, atol=1e-6)
    assert ns["uncompiled"].shape == (100, 2)


def test_split_follows_a_recompiled_template(shell):
    result, captured = run(shell, "-n 2",
                           "model = build()\nmodel.fit(x, y, verbose=0)\n"
                           "model.compile(keras.optimizers.Adam(), 'mae')\n"
                           "history = model.fit(x, y, verbose=0)")
    assert result.success, captured.stdout
    trained = shell.user_ns["history"].model
    assert trained.optimizer is shell.user_ns["model"].optimizer
    assert isinstance(trained.optimizer, keras.optimizers.Adam)


def test_uncompiled_fit_raises_keras_error_and_unbuilt_model_warns(shell):
    result, captured = run(shell, "-n 2", "build('raw', compiled=False).fit(x, y, verbose=0)")
    assert isinstance(result.error_in_exec, ValueError)
    assert "compile()" in str(result.error_in_exec)

    body = """
class Net(keras.Model):
    def __init__(self):
        super().__init__()
        self.dense = keras.layers.Dense(2)
    def call(self, inputs):
        return self.dense(inputs)
net = Net()
net.compile("sgd", "mse")
history = net.fit(x, y, verbose=0)
"""
    with pytest.warns(UserWarning, match="'net' is not built yet, so this fit\\(\\) call runs "
                                         "on one device"):
        result, _ = run(shell, "-n 2", body)
    assert result.success
    assert shell.user_ns["history"].model is shell.user_ns["net"]


def test_default_devices_follow_the_picker_selection(shell):
    setup_test_comm()
    with fake_nvml(*plausible_gpus(8)):
        picker = nbreplica.GpuPicker(refresh_interval=60)
        picker.selected = [1, 3, 5]  # as ticking three boxes does
        picker.close()
    teardown_test_comm()
    body = "history = model.fit(x, y, verbose=0)\ninside = nbreplica.selected_devices()"
    shell.run_cell("model = build()")
    for line, expected in (("", (1, 3, 5)), ("-n 2", (1, 3))):
        result, captured = run(shell, line, body)
        assert result.success, captured.stdout
        assert shell.user_ns["inside"] == expected
        assert devices_of(shell.user_ns["history"].model) == [
            f"/device:CPU:{i + 1}" for i in expected]
        assert nbreplica.selected_devices() == (1, 3, 5)
    nbreplica.use_devices(None)
    result, _ = run(shell, "", body)
    assert shell.user_ns["inside"] == tuple(range(8))


def test_one_device_runs_the_cell_plainly_on_it(shell):
    result, captured = run(shell, "--gpus 3",
                           "model = build()\nhistory = model.fit(x, y, verbose=0)\n"
                           "where = tf.identity(tf.constant(1.0)).device")
    assert result.success, captured.stdout
    assert shell.user_ns["history"].model is shell.user_ns["model"]
    assert shell.user_ns["where"].endswith("/device:CPU:4")
    assert "on 1 emulated GPU (3)" in shown(captured)


def test_mirrored_builds_models_in_the_strategy_over_growing_device_counts(shell):
    body = ("strategy = tf.distribute.get_strategy()\nmodel = build()\n"
            "history = model.fit(x, y, epochs=2, verbose=0)")
    strategies = []
    # Strategies over 2 and then 4 devices train in one process (no collective clash).
    for count in (2, 4, 2):
        result, captured = run(shell, f"--strategy mirrored -n {count}", body)
        assert result.success, captured.stdout
        strategy = shell.user_ns["strategy"]
        assert isinstance(strategy, tf.distribute.MirroredStrategy)
        assert strategy.num_replicas_in_sync == count
        assert isinstance(shell.user_ns["model"].weights[0].value,
                          tf.distribute.DistributedValues)
        strategies.append(strategy)
        assert f"mirrored over {count} emulated GPUs" in shown(captured)
    assert strategies[0] is strategies[2]  # one strategy per device set
    assert not tf.distribute.has_strategy()


def test_mirrored_refuses_a_model_built_outside_the_cell(shell):
    shell.run_cell("model = build()")
    result, captured = run(shell, "--strategy mirrored -n 2", "model.fit(x, y, verbose=0)")
    assert isinstance(result.error_in_exec, ValueError)
    assert "models must be built inside the %%replicate cell" in str(result.error_in_exec)
    assert "Received: model 'mlp'" in str(result.error_in_exec)
    assert "----> 1 model.fit(x, y, verbose=0)" in captured.stdout


def test_an_error_shows_the_users_traceback_and_fails_the_cell(shell):
    body = "partial = 1\ndef inner():\n    return 1 / 0\ninner()"
    result, captured = run(shell, "-n 2", body)
    assert not result.success
    assert isinstance(result.error_in_exec, ZeroDivisionError)
    assert shell.user_ns["partial"] == 1
    assert "----> 3     return 1 / 0" in captured.stdout
    assert captured.stdout.count("Traceback") == 1
    assert "nbreplica" not in captured.stdout.split("Traceback")[1].split("ZeroDivisionError:")[0]


def test_an_interrupt_inside_the_body_restores_selection_and_keras(shell):
    nbreplica.use_devices([2, 4])
    body = ("model = build()\nmodel.fit(x, y, verbose=0)\nreached = True\n"
            "raise KeyboardInterrupt")
    result, _ = run(shell, "--strategy mirrored", body)
    assert isinstance(result.error_in_exec, KeyboardInterrupt)
    assert shell.user_ns["reached"]
    assert nbreplica.selected_devices() == (2, 4)
    assert not tf.distribute.has_strategy()
    # (the autouse fixture checks that keras.Model's methods are restored)


def test_summary_shows_devices_wall_time_and_throughput(shell, magics):
    result, captured = run(shell, "-n 4", "model = build()\n"
                                          "model.fit(x, y, epochs=2, batch_size=32, verbose=0)")
    assert result.success
    summary = shown(captured)
    assert "%%replicate: split over 4 emulated GPUs (0, 1, 2, 3) · wall time" in summary
    assert re.search(r"training 'mlp': [\d,]+ samples/s after the first step \(8 steps, "
                     r"batch 32; first step", summary)
    stats = magics.last_run.training
    # 100 rows in batches of 32: 32, 32, 32, 4 per epoch; the first step is warm-up.
    assert (stats.steps, stats.warmup_steps, stats.samples) == (8, 1, 200)
    assert stats.samples_per_s > 0 and magics.last_run.usage is None
    assert magics.last_run.strategy == "split" and len(magics.last_run.devices) == 4


def test_shares_split_the_cells_batches_and_the_summary_says_how(shell, magics):
    result, captured = run(shell, "-n 3 --shares 0.5,0.25,0.25",
                           "model = build()\nhistory = model.fit(x, y, batch_size=20, verbose=0)")
    assert result.success, captured.stdout
    trained = shell.user_ns["history"].model
    assert trained.shares == (0.5, 0.25, 0.25) and trained.shares_source == "given"
    assert "each batch split by shares: given 50% · 25% · 25%" in shown(captured)
    assert magics.last_run.fits[0].split == "given 50% · 25% · 25%"

    result, captured = run(shell, "-n 2 --shares auto --quiet",
                           "history = build().fit(x, y, batch_size=20, verbose=0)")
    assert result.success, captured.stdout
    assert shell.user_ns["history"].model.shares_source == "calibration"
    assert "Calibrating shares='auto'" in captured.stdout


def test_a_batch_too_small_for_a_share_is_refused_in_a_cell_as_outside(shell, magics):
    result, captured = run(shell, "-n 2 --shares 0.9,0.1",
                           "model = build()\nmodel.fit(x, y, batch_size=5, verbose=0)")
    assert isinstance(result.error_in_exec, ValueError)
    assert "use a batch of at least 10 rows" in str(result.error_in_exec)
    assert "Received: shares=[0.9, 0.1], batch_size=5" in str(result.error_in_exec)
    assert not magics.last_run.fits


def test_quiet_shows_no_summary(shell):
    result, captured = run(shell, "-n 2 --quiet", "value = 41 + 1\nprint('body output')")
    assert result.success and shell.user_ns["value"] == 42
    assert captured.stdout == "body output\n"
    assert not captured.outputs


def test_monitor_reports_each_devices_peak_memory_and_utilization(shell, magics):
    with fake_nvml(*plausible_gpus(8)):
        result, captured = run(shell, "--gpus 0,1 --monitor", "import time; time.sleep(0.6)")
    assert result.success
    idle, busy = magics.last_run.usage
    assert 0.3 * GIB < idle.peak_memory_bytes < 1 * GIB
    assert busy.peak_memory_bytes > 25 * GIB and busy.mean_utilization > 50
    assert set(magics.last_run.samples["device"]) == set(range(8))
    assert re.search(r"GPU\s+peak memory\s+mean utilization\n0\s+0\.\d\d GiB\s+\d+ %\n"
                     r"1\s+2\d\.\d\d GiB\s+\d+ %", shown(captured))


@pytest.mark.parametrize(("line", "body", "message"), [
    ("--strategy ring", "pass", "argument --strategy: invalid choice: 'ring' "
                                "(choose from 'split', 'mirrored')"),
    ("--gpus 0,x", "pass", "argument --gpus: expected comma-separated whole numbers >= 0. "
                           "Received: --gpus 0,x"),
    ("--gpus 1,1", "pass", "argument --gpus: numbers must not repeat. Received: --gpus 1,1"),
    ("--gpus 2,9", "pass", "This machine has GPUs 0-7; there is no GPU 9. Received: --gpus 2,9"),
    ("-n 0", "pass", "argument -n: expected a whole number >= 1. Received: -n 0"),
    ("-n 9", "pass", "-n asks for 9 devices, but only 8 are available. Received: -n 9"),
    ("--gpus 0,1 -n 2", "pass", "--gpus and -n cannot be combined"),
    ("--sweep 1,16", "pass", "--sweep asks for 16 devices, but the cell may use 8"),
    ("--sweep 0,2", "pass", "argument --sweep: expected comma-separated whole numbers >= 1"),
    ("--repeats 2", "pass", "--repeats only applies to sweeps"),
    ("--name run", "pass", "--name only applies to sweeps"),
    ("--target-ci 0.2", "pass", "--target-ci only applies to sweeps"),
    ("--budget 60", "pass", "--budget only applies to sweeps"),
    ("--sweep 2 --target-ci wide", "pass",
     "argument --target-ci: expected a relative interval width such as 0.10, or 0 for a "
     "fixed number of repeats. Received: --target-ci wide"),
    ("--sweep 2 --budget -1", "pass",
     "argument --budget: expected a number of seconds > 0. Received: --budget -1"),
    ("--sweep 1,2 --repeats 0", "pass", "argument --repeats: expected a whole number >= 1"),
    ("--ring", "pass", "unrecognized arguments: --ring"),
    ("-n 3 --shares 0.5,0.5", "pass", "--shares needs one proportion per device of the "
                                      "cell: 3 devices (GPUs 0, 1, 2), 2 shares. "
                                      "Received: --shares 0.5,0.5"),
    ("-n 2 --shares 1,0", "pass", "argument --shares: expected even, auto, memory or "
                                  "comma-separated numbers > 0, one per device. "
                                  "Received: --shares 1,0"),
    ("-n 2 --shares fast", "pass", "Received: --shares fast"),
    ("-n 2 --shares auto --strategy mirrored", "pass",
     "--shares splits the batches of --strategy split; MirroredStrategy splits evenly. "
     "Received: --shares auto with --strategy mirrored"),
    ("--workers 2 --shares memory", "pass", "--shares does not combine with --workers"),
    ("-n 2", "  \n", "%%replicate needs a cell body to run"),
    ("-n 2", "%%replicate -n 2\npass", "%%replicate cells cannot be nested"),
])
def test_usage_errors_name_the_flag_and_what_it_accepts(shell, line, body, message):
    with capture_output():
        with pytest.raises(UsageError, match=re.escape(message)):
            if message.startswith("%%replicate cells"):
                shell.run_cell(f"%%replicate {line}\n{body}").raise_error()
            else:
                shell.run_cell_magic("replicate", line, body)


def test_help_shows_the_cell_magics_own_usage(shell):
    with capture_output() as captured:
        shell.run_cell("%%replicate?")
    shown = captured.stdout
    assert "%%replicate [--gpus IDS] [-n N]" in shown
    assert "%replicate [" not in shown.replace("%%replicate [", "")


def test_sweep_records_every_point_and_keeps_the_last_runs_namespace(shell, magics, tmp_path):
    body = ("runs = globals().get('runs', 0) + 1\nmodel = build()\n"
            "model.fit(x, y, epochs=2, batch_size=20, verbose=0)\n"
            "print('trained on', len(nbreplica.selected_devices()), 'devices')")
    result, captured = run(shell, "--sweep 2 --repeats 2 --target-ci 0 --name tiny-sweep "
                           "--monitor", body)
    assert result.success, captured.stdout
    assert shell.user_ns["runs"] == 4
    assert captured.stdout.count("trained on") == 1  # only the last run's output shows
    assert "trained on 2 devices" in captured.stdout
    assert "Sweep 'tiny-sweep', stored in" in shown(captured)
    # 9 timed steps and 2 repeats per point: figures marked, no law fitted.
    assert re.search(r"Unreliable split×2: 9 timed steps/repeat, time ≥ \d\d+; 2 repeats, "
                     r"run ≥ 3", shown(captured).replace("\n  ", " "))
    assert "scaling law not fitted and no device count recommended" in shown(captured)
    stored = ResultsStore(tmp_path / "results.sqlite").runs("tiny-sweep")
    assert list(zip(stored["strategy"], stored["devices"], stored["repeat"])) == [
        ("single", 1, 1), ("split", 2, 1), ("single", 1, 2), ("split", 2, 2)]
    # The baseline runs unsplit: no shares (NULL).
    assert list(stored["shares"].fillna("")) == ["", "even 50% · 50%", "", "even 50% · 50%"]
    assert set(stored["global_batch_size"]) == {20}
    assert (stored["steps"] == 9).all() and (stored["warmup_steps"] == 1).all()
    assert stored["emulated"].all()
    assert magics.last_sweep.sweep_id == stored["sweep_id"].iloc[0]
    assert set(magics.last_sweep.frame["strategy"]) == {"single", "split"}
    assert nbreplica.selected_devices() is None

    with capture_output() as report:
        shell.run_line_magic("nbreplica_report", "tiny-sweep")
    assert shown(report).startswith("Sweep 'tiny-sweep', stored in")
    summary, figure = report.outputs
    assert summary.data["text/html"] == magics.last_sweep._repr_html_()
    assert "<table" in summary.data["text/html"]
    assert "split: scaling law not fitted" in summary.data["text/html"]
    assert figure.data["image/png"].startswith(b"\x89PNG")
    assert captured.outputs[-1].data["image/png"].startswith(b"\x89PNG")  # after the sweep
    with capture_output() as latest:
        shell.run_line_magic("nbreplica_report", "")
    assert shown(latest) == shown(report)
    with pytest.raises(UsageError, match="No sweep called 'other' in .*tiny-sweep"):
        shell.run_line_magic("nbreplica_report", "other")


def test_a_cell_sweep_splits_by_shares_and_its_report_says_so(shell, tmp_path):
    body = "model = build()\nmodel.fit(x, y, epochs=1, batch_size=20, verbose=0)"
    result, captured = run(shell, "-n 3 --sweep 2,3 --repeats 2 --target-ci 0 "
                           "--shares 2,1,1 --name shared", body)
    assert result.success, captured.stdout
    stored = ResultsStore(tmp_path / "results.sqlite").runs("shared")
    split = dict(zip(stored["devices"], stored["shares"].fillna("")))
    # A point on 2 of the 3 devices uses the first two shares, 2:1.
    assert split == {1: "", 2: "given 67% · 33%", 3: "given 50% · 25% · 25%"}
    assert ("Each batch split by shares: split on 2 devices given 67% · 33%; split on 3 "
            "devices given 50% · 25% · 25%") in shown(captured).replace("\n  ", " ")


def test_an_adaptive_cell_sweep_adds_repeats_until_the_target(shell, magics, tmp_path):
    body = ("runs = globals().get('runs', 0) + 1\nmodel = build()\n"
            "model.fit(x, y, epochs=2, batch_size=20, verbose=0)\nprint('run', runs)")
    # After the first 3 rounds, rounds are added, each with its baseline, until the
    # speedup interval is within 500% (the budget is far off).
    result, captured = run(shell, "--sweep 2 --target-ci 5 --budget 240 --name wide", body)
    assert result.success, captured.stdout
    stored = ResultsStore(tmp_path / "results.sqlite").runs("wide")
    rounds = int(stored["repeat"].max())
    assert rounds >= 3 and shell.user_ns["runs"] == 2 * rounds
    assert captured.stdout.count("run ") == 1 and f"run {2 * rounds}" in captured.stdout
    assert list(stored["repeat"]) == [r for r in range(1, rounds + 1) for _ in range(2)]
    assert (stored["target_ci"] == 5.0).all()
    assert magics.last_sweep.frame["target_met"].tolist()[1] is True


def test_report_without_a_results_file(shell, tmp_path):
    with pytest.raises(UsageError, match=re.escape(
            f"No results file at {tmp_path / 'results.sqlite'}: no sweep has been stored "
            "there yet")):
        shell.run_line_magic("nbreplica_report", "")


def test_sweep_interrupt_keeps_the_points_measured(shell, magics, tmp_path):
    nbreplica.use_devices([4, 5, 6, 7])
    body = ("model = build()\nmodel.fit(x, y, batch_size=50, verbose=0)\n"
            "if len(nbreplica.selected_devices()) == 4:\n    raise KeyboardInterrupt")
    result, captured = run(shell, "--sweep 2,4 --repeats 1 --target-ci 0 --name stopped", body)
    assert isinstance(result.error_in_exec, KeyboardInterrupt)
    assert "KeyboardInterrupt" in captured.stdout  # the interrupted run's output is shown
    stored = ResultsStore(tmp_path / "results.sqlite").runs("stopped")
    assert list(zip(stored["strategy"], stored["devices"])) == [("single", 1), ("split", 2)]
    assert magics.last_sweep.interrupted and magics.last_sweep.planned_points == 3
    assert "stopped after 2 of 3 points" in shown(captured)
    assert nbreplica.selected_devices() == (4, 5, 6, 7)


def test_sweep_stops_at_an_error_and_needs_a_cell_that_trains(shell, tmp_path):
    body = ("model = build()\nmodel.fit(x, y, verbose=0)\n"
            "if len(nbreplica.selected_devices()) == 2:\n    1 / 0")
    result, captured = run(shell, "--sweep 2 --repeats 1 --target-ci 0", body)
    assert isinstance(result.error_in_exec, ZeroDivisionError)
    assert "----> 4     1 / 0" in captured.stdout
    assert len(ResultsStore(tmp_path / "results.sqlite").runs()) == 1

    with capture_output(), pytest.raises(UsageError, match="the cell trained no model"):
        shell.run_cell_magic("replicate", "--sweep 2", "value = 1")


def test_nbreplica_devices_shows_one_live_picker(shell, magics):
    setup_test_comm()
    try:
        with fake_nvml(*plausible_gpus(4)):
            with capture_output() as first:
                shell.run_line_magic("nbreplica_devices", "")
            picker = magics._picker
            assert isinstance(picker, nbreplica.GpuPicker) and picker.refreshing
            assert first.outputs[0].data["text/plain"].startswith("GpuPicker(")
            with capture_output():
                shell.run_line_magic("nbreplica_devices", "")
            assert not picker.refreshing and magics._picker is not picker
            magics.close_picker()
        with pytest.raises(UsageError, match="takes no arguments. Received: '--all'"):
            shell.run_line_magic("nbreplica_devices", "--all")
    finally:
        teardown_test_comm()
