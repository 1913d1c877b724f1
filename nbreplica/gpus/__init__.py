"""Which devices training uses, as one path in four steps:

1. **Which GPUs exist** — :mod:`~nbreplica.gpus.available`: the accelerators
   TensorFlow can place work on (``list_devices``), real or emulated
   (``emulate_gpus``; :mod:`~nbreplica.gpus.emulation` keeps the emulated count
   without TensorFlow, for the device and notebook layers).
2. **Which are chosen** — :mod:`~nbreplica.gpus.chosen`: the process-wide selection
   made with the GPU picker or ``use_devices``.
3. **What TensorFlow may see** — :mod:`~nbreplica.gpus.visible`: the selection,
   applied to TensorFlow before its runtime starts (visible devices, memory growth).
4. **Where replicas go** — :mod:`~nbreplica.gpus.replicas`: the devices a replicated
   model (``replicate(model, gpus=...)``), a sweep or a ``%%replicate`` cell runs on.

GPU numbers are NVML's throughout. Steps 1 and 4 need TensorFlow; steps 2 and 3 (and
this package) do not, so nothing is imported here.
"""
