"""The chaos soak (``benchmarks/soak.py``): a real multi-process cluster under
continuous work and overlapping faults from a seeded schedule, with its invariants
checked all the time and again at the end.

* ``report``: violations, the run's history and its figures;
* ``acks``: the frameworks run through a launcher that checks, at every
  acknowledgement, that the acknowledged state is already in the framework's store;
* ``checks``: the invariant checkers, pure functions over what was observed;
* ``observe``: what is observed (live task copies, side files, stores, logs);
* ``cluster``, ``faults``, ``workload``, ``run``: the cluster, the fault schedule,
  the work, and the run that ties them together.
"""
