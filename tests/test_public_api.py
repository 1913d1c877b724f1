"""The public names are a contract: adding or removing one is a deliberate change."""

import inspect

import nbreplica

PUBLIC = {
    "Accelerator", "DeviceConfigurationError", "cluster", "DeviceStats", "GpuPicker",
    "NbreplicaError", "ProcessInfo", "ReplicaError", "ReplicatedModel", "ResultsStoreError",
    "Sampler", "SweepError", "SweepInterrupted", "SweepResult", "TemplateCheckpoint",
    "FidelityReport", "Hardware", "check_fidelity", "driver_version", "emulate_gpus",
    "forecast", "free_gpus", "GpuMonitor", "hardware_catalogue", "compare",
    "list_devices",
    "load_ipython_extension", "load_results", "multi_gpu_model", "nvml_status",
    "plot_comparison", "replicate", "selected_devices", "snapshot", "sweep",
    "unload_ipython_extension", "use_devices",
}


def test_all_lists_exactly_the_public_names():
    assert set(nbreplica.__all__) == PUBLIC
    assert all(hasattr(nbreplica, name) for name in PUBLIC)


def test_public_callables_are_documented():
    for name in PUBLIC:
        assert inspect.getdoc(getattr(nbreplica, name)), f"{name} has no docstring"


def test_replicate_keeps_the_pinned_signature():
    parameters = inspect.signature(nbreplica.replicate).parameters
    # multi_gpu_model's order, then shares=
    assert list(parameters) == ["model", "gpus", "cpu_merge", "cpu_relocation", "shares"]
    assert [p.default for p in list(parameters.values())[1:]] == [None, True, False, None]


def test_cluster_names():
    assert set(nbreplica.cluster.__all__) == {
        "LaunchTimeout", "RayBackend", "WorkerContext", "WorkerError", "context", "launch",
        "write_job"}
    for name in nbreplica.cluster.__all__:
        assert inspect.getdoc(getattr(nbreplica.cluster, name)), f"{name} has no docstring"


def test_check_fidelity_keeps_the_pinned_signature():
    parameters = inspect.signature(nbreplica.check_fidelity).parameters
    assert list(parameters) == ["model", "x", "y", "gpus", "steps", "shares", "fit_kwargs"]
    assert [parameters[name].default for name in ("y", "gpus", "steps", "shares")] == [
        None, 4, 3, None]
    assert parameters["shares"].kind is inspect.Parameter.KEYWORD_ONLY


def test_launch_keeps_the_pinned_signature():
    parameters = inspect.signature(nbreplica.cluster.launch).parameters
    assert list(parameters) == ["fn", "args", "workers", "backend", "timeout", "kwargs"]
    assert [parameters[name].default for name in ("workers", "backend", "timeout")] == [
        2, "local", 600]
