"""``ReplicatedModel``: a Keras model that runs its template data-parallel.

Every step is the template's own: ``train_step``, ``test_step``, ``predict_step``,
``compute_loss`` and ``compute_metrics`` run on the template, with the template's
compile state, while the forward passes of the template and of the Keras models it
holds (a GAN's generator and discriminator, a VAE's encoder and decoder) are swapped
for replicated ones (:mod:`nbreplica.replicator.forward`): split, each replica on its
device, merge.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import keras
import tensorflow as tf

from nbreplica import _keras_compat as compat
from nbreplica._errors import caller_stacklevel
from nbreplica._keras_compat.instance_call import instance_calls
from nbreplica.gpus.available import HOST_DEVICE, Accelerator
from nbreplica.replicator.forward import Placement, has_batch, inside_replica, replicated_call
from nbreplica.gpus.replicas import resolve_gpus
from nbreplica.replicator.relocation import move_variables
from nbreplica.replicator.shares import Shares, check_batch, resolve_shares, split_text


@keras.saving.register_keras_serializable(package="nbreplica")
@compat.share_compile_state("template")
class ReplicatedModel(keras.Model):
    """A Keras model that splits every batch across devices and runs ``template``
    (sharing its layers and weights) on each; made by :func:`nbreplica.replicate`.

    ``fit``, ``evaluate`` and ``predict`` run the template's own ``train_step``,
    ``test_step`` and ``predict_step`` (Keras's stock ones, or its overrides, with its
    ``compute_loss``, ``compute_metrics`` and metrics); every call of the template, and
    of the Keras models it holds as attributes, on batch-shaped data inside them runs
    data-parallel. ``compile`` is the template's own (whatever arguments it takes), and
    the compile state is shared: compiling this model compiles the template, and
    replicating a compiled template keeps its compile state. Training it trains
    ``template``. Save ``template`` for a model that loads anywhere; saving this model
    keeps the device layout too.

    .. warning::
        ``BatchNormalization`` computes its statistics per replica (on each sub-batch)
        and updates its moving averages once per replica per step, so their effective
        momentum is ``momentum ** n_devices``.

    .. warning::
        Random layers (``Dropout``, ``GaussianNoise``, RNN dropout, random augmentation,
        ``keras.random`` draws in a layer) draw independently on each replica: no two
        replicas share a mask, but the masks differ from one device's, and each
        ``SeedGenerator`` advances once per replica per step. Training stays
        reproducible after ``keras.utils.set_random_seed``; inference is unaffected.

    .. warning::
        A step that calls none of the models on the batch (only raw TensorFlow ops),
        or calls one on data without a batch axis, runs that work on one device; a
        warning at the first step names it.
    """

    def __init__(
        self,
        template: keras.Model,
        gpus: int | Sequence[int] | None = None,
        cpu_merge: bool = True,
        cpu_relocation: bool = False,
        name: str | None = None,
        shares: str | Sequence[float] | None = None,
        **kwargs: Any,
    ) -> None:
        accelerators = resolve_gpus(gpus)
        chosen_shares = resolve_shares(shares, template, accelerators)
        kwargs.setdefault("dtype", template.dtype_policy)
        super().__init__(name=name or _unique_name(f"{template.name}_replicated"), **kwargs)
        if cpu_relocation:
            move_variables(template, HOST_DEVICE)
        _warn_about_synchronized_batch_normalization(template)
        self.template = template
        self.accelerators: tuple[Accelerator, ...] = tuple(accelerators)
        self.cpu_merge = bool(cpu_merge)
        self.cpu_relocation = bool(cpu_relocation)
        self.merge_device = HOST_DEVICE if cpu_merge else accelerators[0].device
        self._shares = chosen_shares
        if hasattr(template, "output_names"):
            self.output_names = _deduplicated(list(template.output_names))
        # XLA would fuse the whole step into one cluster on one device and ignore
        # every per-replica placement; "auto" must stay off and True is refused.
        self.supports_jit = False
        self._replicating = False
        self._calls = _CallLog()
        self._record_trainable_state()
        self.built = True

    @property
    def devices(self) -> list[str]:
        """The TensorFlow device string of each replica, in replica order."""
        return [a.device for a in self.accelerators]

    @property
    def shares(self) -> tuple[float, ...]:
        """Each replica's share of every batch, in replica order (summing to 1)."""
        return self._shares.values

    @property
    def shares_source(self) -> str:
        """Where :attr:`shares` came from: ``"even"``, ``"given"`` (explicit shares),
        ``"memory"`` (free memory, NVML), ``"calibration"`` (``"auto"``, measured) or
        ``"nvml"`` (``"auto"``, from NVML's description of each GPU)."""
        return self._shares.source

    @property
    def split(self) -> str:
        """:attr:`shares` and :attr:`shares_source` in a few words, as reports show
        them: ``"given 50% · 25% · 25%"``."""
        return split_text(self._shares)

    def fit(self, x: Any = None, y: Any = None, batch_size: int | None = None,
            *args: Any, **kwargs: Any) -> Any:
        check_batch(self._shares, x, batch_size)
        return super().fit(x, y, batch_size, *args, **kwargs)

    def evaluate(self, x: Any = None, y: Any = None, batch_size: int | None = None,
                 *args: Any, **kwargs: Any) -> Any:
        check_batch(self._shares, x, batch_size)
        return super().evaluate(x, y, batch_size, *args, **kwargs)

    def predict(self, x: Any, batch_size: int | None = None, *args: Any,
                **kwargs: Any) -> Any:
        check_batch(self._shares, x, batch_size)
        return super().predict(x, batch_size, *args, **kwargs)

    @property
    def metrics(self) -> list[keras.metrics.Metric]:
        """The template's metrics (its own and its compiled ones)."""
        return list(self.template.metrics)

    def compile(self, *args: Any, **kwargs: Any) -> None:
        """Compile the template with its own ``compile``, whatever arguments it takes
        (Keras's, or a GAN's ``compile(d_optimizer, g_optimizer, loss_fn)``); this
        model shares the resulting compile state. ``jit_compile=True`` is turned off
        with a warning that says why (see :attr:`jit_compile`).
        """
        if kwargs.get("jit_compile") is True:
            _warn_without_xla()
            kwargs["jit_compile"] = False
        self.template.compile(*args, **kwargs)
        self._after_compile()

    @property
    def jit_compile(self) -> bool:
        """Always ``False``: XLA would compile the whole step into one cluster on one
        device, ignoring every replica's placement. Setting it to ``True`` warns, saying
        so, and leaves it off; the template keeps its own setting for training alone."""
        return False

    @jit_compile.setter
    def jit_compile(self, value: bool | str) -> None:
        if value is True:
            _warn_without_xla()

    def compile_from_config(self, config: dict[str, Any]) -> None:
        """Restore the compile settings saved with this model: the template is
        compiled from them, as Keras compiles a loaded model."""
        self.template.compile_from_config(config)
        self._after_compile()

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        with self._replicated_template():
            return self.template(inputs, training=training)

    def train_step(self, data: Any) -> Any:
        with self._as_template("train_step"):
            return self.template.train_step(data)

    def test_step(self, data: Any) -> Any:
        with self._as_template("test_step"):
            return self.template.test_step(data)

    def predict_step(self, data: Any) -> Any:
        with self._as_template("predict_step"):
            return self.template.predict_step(data)

    def compute_loss(self, x: Any = None, y: Any = None, y_pred: Any = None,
                     sample_weight: Any = None, training: bool = True) -> Any:
        with self._as_template():
            return compat.compute_loss(self.template, x=x, y=y, y_pred=y_pred,
                                       sample_weight=sample_weight, training=training)

    def compute_metrics(self, x: Any, y: Any, y_pred: Any,
                        sample_weight: Any = None) -> Any:
        with self._as_template():
            return self.template.compute_metrics(x, y, y_pred, sample_weight=sample_weight)

    def get_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "template": keras.saving.serialize_keras_object(self.template),
            "gpus": [a.index for a in self.accelerators],
            "cpu_merge": self.cpu_merge,
            "cpu_relocation": self.cpu_relocation,
            "shares": None if self._shares.split is None else list(self.shares),
            "shares_source": self.shares_source,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any], custom_objects: Any = None) -> "ReplicatedModel":
        config = dict(config)
        resolve_gpus(config["gpus"], caller="load a saved ReplicatedModel")
        template = keras.saving.deserialize_keras_object(
            config.pop("template"), custom_objects=custom_objects
        )
        # The saved proportions, not a new calibration or memory reading.
        source = config.pop("shares_source", "even")
        model = cls(template, **config)
        model._shares = Shares(model.shares, source)
        return model

    def _after_compile(self) -> None:
        self.train_function = self.test_function = self.predict_function = None
        self.stop_training = False
        self._record_trainable_state()

    def _record_trainable_state(self) -> None:
        # What Keras compares before training to warn of layers frozen since compile.
        self._compiled_trainable_state = {
            layer: layer.trainable for layer in compat.flatten_layers(self)}

    @contextlib.contextmanager
    def _as_template(self, step: str | None = None) -> Iterator[None]:
        """The template's hooks run as this model's: their model calls replicated, and
        what is left (the loss, say) on the merge device."""
        with tf.device(self.merge_device), self._replicated_template():
            if step is None or step in self._calls.reported:
                yield
                return
            self._calls.current = []
            try:
                yield
                self._report_unsplit_work(step, self._calls.current)
            finally:
                self._calls.current = None

    def _report_unsplit_work(self, step: str, calls: list[str | None]) -> None:
        """Warn, once per step kind, of work the step ran on one device."""
        self._calls.reported.add(step)
        unsplit = sorted({name for name in calls if name is not None})
        where = self.accelerators[0].device
        if not calls:
            warnings.warn(
                f"The {step} of {self.template.name!r} called none of its models on the "
                f"batch, so none of its work was split: it all ran on {self.merge_device}. "
                "Call the model (self(x)) or the models it holds inside the step to run "
                f"them data-parallel. Received: a {step} without model calls", stacklevel=2)
        elif unsplit:
            warnings.warn(
                f"In the {step} of {self.template.name!r}, models {unsplit} were called on "
                f"data without a batch axis, so they ran once, on {where}, not split. "
                f"Received: model calls without a batch axis in {step}", stacklevel=2)

    @contextlib.contextmanager
    def _replicated_template(self) -> Iterator[None]:
        """Within the context, calling the template (or a Keras model it holds) on a
        batch runs it on every replica."""
        if self._replicating:
            yield
            return
        placement = Placement(self.accelerators, self.merge_device, self._shares.split)
        calls = [(model, self._replicated_call_of(model, placement))
                 for model in _models_of(self.template)]
        self._replicating = True
        try:
            with instance_calls(calls):
                yield
        finally:
            self._replicating = False

    def _replicated_call_of(self, model: keras.Model,
                            placement: Placement) -> Callable[..., Any]:
        own_call = model.call

        def call(inputs: Any, *args: Any, **kwargs: Any) -> Any:
            if inside_replica():
                return own_call(inputs, *args, **kwargs)
            if args:
                raise TypeError(
                    "A replicated model's call takes its inputs as the one positional "
                    f"argument. Received: {len(args)} more positional arguments calling "
                    f"{model.name!r}")
            split = has_batch(inputs)
            self._calls.record(None if split else model.name)
            if not split:
                with tf.device(placement.accelerators[0].device):
                    return own_call(inputs, **kwargs)
            return replicated_call(model, own_call, inputs, kwargs, placement)

        return call


class _CallLog:
    """The model calls of the step being watched (per call, the name of a model that
    ran unsplit, or ``None`` for a split call), and the step kinds already reported."""

    def __init__(self) -> None:
        self.current: list[str | None] | None = None
        self.reported: set[str] = set()

    def record(self, unsplit_model: str | None) -> None:
        if self.current is not None:
            self.current.append(unsplit_model)


def _models_of(template: keras.Model) -> list[keras.Model]:
    """``template`` and every Keras model nested in it, each once."""
    models: dict[int, keras.Model] = {}
    for layer in compat.flatten_layers(template):
        if isinstance(layer, keras.Model):
            models.setdefault(id(layer), layer)
    return list(models.values())


def _warn_about_synchronized_batch_normalization(template: keras.Model) -> None:
    synchronized = [layer.name for layer in compat.flatten_layers(template)
                    if isinstance(layer, keras.layers.BatchNormalization)
                    and getattr(layer, "synchronized", False)]
    if synchronized:
        warnings.warn(
            "A replicated model computes BatchNormalization statistics per replica (on "
            "each replica's sub-batch), also for layers made with synchronized=True, "
            "which only synchronizes under a tf.distribute strategy. Received: "
            f"synchronized BatchNormalization layers {synchronized} in model "
            f"{template.name!r}",
            stacklevel=3,
        )


def _warn_without_xla() -> None:
    """Say why a replicated model turns ``jit_compile=True`` off, where Keras would
    only say that the model does not support it; the warning names the caller's line
    (the first outside nbreplica, Keras and TensorFlow)."""
    warnings.warn(
        "A replicated model does not run under XLA: XLA compiles the whole training "
        "step into one cluster on one device, which would ignore every replica's device "
        "placement, so jit_compile stays off and each replica's part runs as ordinary "
        "TensorFlow ops. Nothing else is needed: leave jit_compile unset (or False) to "
        "train replicated without this warning, or train the template alone to use XLA "
        "on one device. Received: jit_compile=True", UserWarning, stacklevel=caller_stacklevel())


def _unique_name(base: str) -> str:
    """``base`` the first time, then ``base_1``, ``base_2``, ... (as Keras names layers)."""
    uid = keras.backend.get_uid(base)
    return base if uid == 1 else f"{base}_{uid - 1}"


def _deduplicated(names: list[str]) -> list[str]:
    """Output names made unique (``out``, ``out_1``, ...), as Keras requires them to be."""
    counts: dict[str, int] = {}
    unique = []
    for name in names:
        if name in counts:
            counts[name] += 1
            unique.append(f"{name}_{counts[name]}")
        else:
            counts[name] = 0
            unique.append(name)
    return unique
