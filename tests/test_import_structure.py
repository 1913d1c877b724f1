"""The package's import graph: no circles, every arrow pointing down the layers, and a
TensorFlow-free ``import nbreplica``."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

import nbreplica

PACKAGE_ROOT = Path(nbreplica.__file__).parent

# Lowest first: a module may import its own layer and the layers before it, never a
# later one. A name matches a module and everything under it.
LAYERS = [
    ["nbreplica._errors", "nbreplica._checks", "nbreplica.gpus", "nbreplica.gpus.emulation",
     "nbreplica.gpus.visible", "nbreplica.gpus.chosen", "nbreplica._tensorflow",
     "nbreplica._flags"],
    ["nbreplica.devices"],
    ["nbreplica.testing"],
    ["nbreplica.gpus.available", "nbreplica.gpus.replicas", "nbreplica._keras_compat",
     "nbreplica._tf_compat"],
    ["nbreplica.replicator"],
    ["nbreplica.strategy"],
    ["nbreplica.forecasting"],
    ["nbreplica.cluster"],
    ["nbreplica.tracking"],
    ["nbreplica.bench"],
    ["nbreplica.notebook"],
    ["nbreplica._startup", "nbreplica._keras_registry", "nbreplica.cli", "nbreplica.__main__",
     "nbreplica"],
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(path): path for path in PACKAGE_ROOT.rglob("*.py")}


def imported_modules(name: str) -> set[str]:
    """Every nbreplica module ``name`` imports, at any depth of its code (inside
    functions and ``if TYPE_CHECKING:`` blocks too)."""
    found = set()
    for node in ast.walk(ast.parse(MODULES[name].read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                found.add(submodule if submodule in MODULES else node.module)
    return {module for module in found if module in MODULES and module != name}


GRAPH = {name: imported_modules(name) for name in MODULES}


def layer_of(name: str) -> int:
    matches = [(len(prefix), index) for index, layer in enumerate(LAYERS) for prefix in layer
               if name == prefix or name.startswith(prefix + ".")]
    assert matches, f"{name} belongs to no layer: add it to LAYERS"
    return max(matches)[1]


def test_every_import_points_down_the_layers():
    upward = [f"{a} -> {b}" for a, targets in GRAPH.items() for b in targets
              if layer_of(b) > layer_of(a)]
    assert upward == []


def test_there_is_no_import_circle():
    circles = []
    state: dict[str, str] = {}

    def visit(name: str, path: list[str]) -> None:
        state[name] = "open"
        for target in sorted(GRAPH[name]):
            if state.get(target) == "open":
                circles.append(" -> ".join(path[path.index(target):] + [target]))
            elif target not in state:
                visit(target, path + [target])
        state[name] = "done"

    for name in sorted(GRAPH):
        if name not in state:
            visit(name, [name])
    assert circles == []


def test_the_graph_sees_imports_inside_functions_and_type_checking_blocks():
    assert "nbreplica.testing.plausible" in GRAPH["nbreplica._startup"]  # in a function
    assert "nbreplica.bench.result" in GRAPH["nbreplica.cli"]  # under TYPE_CHECKING


def run_python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items()
                   if not k.startswith("NBREPLICA_") and k != "TF_CPP_MIN_LOG_LEVEL"}
    return subprocess.run([sys.executable, "-c", code], env={**environment, **env},
                          capture_output=True, text=True, timeout=300, check=True)


def test_devices_picker_magics_stored_results_and_the_launcher_load_no_tensorflow_nor_ray(
        tmp_path):
    done = run_python(
        "import sys, nbreplica, nbreplica.devices\n"
        "nbreplica.cluster.launch, nbreplica.cluster.context, nbreplica.cluster.write_job\n"
        "nbreplica.cluster.RayBackend(gpus_per_worker=1)\n"
        "from IPython.testing.globalipapp import get_ipython\n"
        "nbreplica.snapshot(); nbreplica.nvml_status(); nbreplica.free_gpus()\n"
        "picker = nbreplica.GpuPicker(); picker.close()\n"
        "shell = get_ipython()\n"
        "shell.run_line_magic('load_ext', 'nbreplica')\n"
        "shell.run_line_magic('nbreplica_devices', '')\n"
        "nbreplica.SweepResult, nbreplica.plot_comparison\n"
        "nbreplica.hardware_catalogue(), nbreplica.Hardware\n"
        "try:\n"
        f"    nbreplica.load_results(results_path={str(tmp_path / 'none.sqlite')!r})\n"
        "except FileNotFoundError:\n"
        "    pass\n"
        "print(sorted(m for m in ('tensorflow', 'keras', 'ray') if m in sys.modules))",
        NBREPLICA_FAKE_NVML="2",
    )
    assert done.stdout.splitlines()[-1] == "[]"


def test_the_devices_command_loads_no_tensorflow():
    done = run_python(
        "import sys\nfrom nbreplica import cli\n"
        "codes = [cli.main(['devices']), cli.main(['devices', '--json']),\n"
        "         cli.main(['devices', '--watch', '0.01', '--count', '2'])]\n"
        "print(codes, sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))",
        NBREPLICA_FAKE_NVML="2",
    )
    assert done.stdout.splitlines()[-1] == "[0, 0, 0] []"


def test_first_use_of_the_replicator_loads_tensorflow_quietly():
    done = run_python(
        "import sys, nbreplica\n"
        "assert 'tensorflow' not in sys.modules\n"
        "print(nbreplica.replicate.__name__, 'tensorflow' in sys.modules)"
    )
    assert done.stdout.split() == ["replicate", "True"]
    assert done.stderr == ""


def test_emulation_from_the_environment_starts_tensorflow_quietly_at_import():
    done = run_python("import sys, nbreplica\nprint('tensorflow' in sys.modules)",
                      NBREPLICA_EMULATE_GPUS="2")
    assert done.stdout.strip() == "True"
    assert done.stderr == ""


def test_simulated_gpus_from_the_environment():
    done = run_python("import nbreplica\nprint(len(nbreplica.snapshot()), nbreplica.nvml_status())",
                      NBREPLICA_FAKE_NVML="3")
    assert done.stdout.startswith("3 NVML ready: 3 GPUs") and "simulated" in done.stdout


def test_a_failing_tensorflow_import_shows_what_tensorflow_wrote(tmp_path):
    broken = tmp_path / "tensorflow"
    broken.mkdir()
    (broken / "__init__.py").write_text(
        "import os\nos.write(2, b'C++ says why\\n')\nraise ImportError('no tensorflow')\n")
    with pytest.raises(subprocess.CalledProcessError) as failed:
        run_python("import nbreplica\nnbreplica.list_devices()", PYTHONPATH=str(tmp_path))
    assert "C++ says why" in failed.value.stderr
    assert "ImportError: no tensorflow" in failed.value.stderr


def keras_model():
    import keras

    inputs = keras.Input((3,))
    return keras.Model(inputs, keras.layers.Dense(2)(inputs))


@pytest.mark.parametrize("imports", ["import nbreplica, keras", "import keras, nbreplica"])
def test_a_saved_replicated_model_loads_after_a_bare_import(tmp_path, imports):
    template = keras_model()
    nbreplica.replicate(template, gpus=2).save(tmp_path / "rep.keras")
    done = run_python(
        f"import sys\n{imports}\n"
        "print(sorted(m for m in sys.modules if m.startswith('nbreplica.replicator')))\n"
        f"loaded = keras.models.load_model({str(tmp_path / 'rep.keras')!r})\n"
        "print(type(loaded).__name__, len(loaded.devices))",
        NBREPLICA_EMULATE_GPUS="2",
    )
    assert done.stdout.splitlines()[-2:] == ["[]", "ReplicatedModel 2"]
