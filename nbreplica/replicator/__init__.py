"""Split -> replicate -> apply -> merge: the data-parallel replicator (TensorFlow).

:func:`~nbreplica.replicator.api.replicate` wraps a Keras model in a
:class:`~nbreplica.replicator.model.ReplicatedModel`; ``forward`` runs the replicas,
``gradients`` joins their gradients, ``plan`` splits batches and merges outputs.
"""
