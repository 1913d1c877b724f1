"""Split -> replicate -> apply -> merge: the data-parallel replicator (TensorFlow)."""

from nbreplica.replicate.api import multi_gpu_model, replicate
from nbreplica.replicate.checkpoint import TemplateCheckpoint
from nbreplica.replicate.model import ReplicatedModel

__all__ = ["ReplicatedModel", "TemplateCheckpoint", "multi_gpu_model", "replicate"]
