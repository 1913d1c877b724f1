"""The fidelity check: does a model train replicated as it trains on one device?

:func:`~nbreplica.replicator.fidelity.check.check_fidelity` trains two identical
copies of a model, one on one device and one replicated, and compares them:
``copies`` makes them, ``capture`` records what their training shows, ``probe``
compares every layer's output, ``documented`` finds the layers documented to differ,
``difference`` measures how far apart two results are, ``frames`` tabulates it and
``report`` gives the verdict.
"""
