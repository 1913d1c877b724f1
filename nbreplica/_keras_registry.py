"""Keras finds nbreplica's saved classes in a process that only ran ``import nbreplica``.

``keras.models.load_model`` looks a saved object's class up by the name it was
registered under (``"nbreplica>ReplicatedModel"``). ``@register_keras_serializable``
registers it when :mod:`nbreplica.replicator.model` is imported, which imports
TensorFlow: ``import nbreplica`` must not, and the emulated GPUs must be configured
before TensorFlow's runtime starts. So :func:`install` only puts a stand-in under each
name, once Keras itself is imported (at once if it already is; else an import hook
waits for ``import keras``, which ``import tensorflow`` runs too). The stand-in's
``from_config``, called when Keras deserializes such an object, imports the real class
through ``nbreplica`` (TensorFlow starting as it always does, quietly), whose
registration replaces the stand-in, and returns what the class's ``from_config``
builds. Nothing else of nbreplica is imported, and no TensorFlow op runs, before that.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any

#: Registered name -> the public nbreplica name of the class saved under it.
SERIALIZABLE = {"nbreplica>ReplicatedModel": "ReplicatedModel"}


class StandIn:
    """Holds a registered name's place in Keras's registry until Keras deserializes
    an object saved under it."""

    def __init__(self, public_name: str) -> None:
        self.public_name = public_name

    def from_config(self, *args: Any, **kwargs: Any) -> Any:
        """Import the real class (it registers itself) and build the object with it."""
        real = getattr(importlib.import_module("nbreplica"), self.public_name)
        return real.from_config(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<stand-in for nbreplica.{self.public_name}>"


def install() -> None:
    """Register the stand-ins now if Keras is imported, else as soon as it is."""
    keras = sys.modules.get("keras")
    if keras is not None and hasattr(keras, "saving"):
        register(keras)
    elif not any(isinstance(finder, _KerasImportHook) for finder in sys.meta_path):
        sys.meta_path.insert(0, _KerasImportHook())


def register(keras: ModuleType) -> None:
    """Put a stand-in under every name not registered yet."""
    registry = keras.saving.get_custom_objects()
    for registered_name, public_name in SERIALIZABLE.items():
        registry.setdefault(registered_name, StandIn(public_name))


class _KerasImportHook(importlib.abc.MetaPathFinder):
    """Finds nothing itself: it hands ``keras``'s spec, as the other finders find it,
    to a loader that registers the stand-ins once Keras has run, and then removes this
    hook. (A spec is also asked for without importing, e.g. by TensorFlow's
    ``importlib.util.find_spec("keras")``: the hook stays until Keras runs.)"""

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if fullname != "keras":
            return None
        for finder in [finder for finder in sys.meta_path if finder is not self]:
            find = getattr(finder, "find_spec", None)
            spec = None if find is None else find(fullname, path, target)
            if spec is not None:
                if spec.loader is not None:
                    spec.loader = _RegisteringLoader(spec.loader, self)
                return spec
        return None


class _RegisteringLoader(importlib.abc.Loader):
    """Keras's own loader, which registers the stand-ins after running Keras."""

    def __init__(self, loader: importlib.abc.Loader, hook: _KerasImportHook) -> None:
        self._loader, self._hook = loader, hook

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        if self._hook in sys.meta_path:
            sys.meta_path.remove(self._hook)
        register(module)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)
