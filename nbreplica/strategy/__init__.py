"""Where a model trains: the strategies of sweeps and ``%%replicate`` cells.

:mod:`~nbreplica.strategy.names` names them without loading TensorFlow (stored
results and plots need the names only); :mod:`~nbreplica.strategy.placements` places
a model for each: one device (the sweep baseline), ``"split"`` (:func:`replicate`),
``"mirrored"`` (``tf.distribute.MirroredStrategy``) and ``"multiworker"`` (a worker
process, already inside its strategy's scope).
"""
