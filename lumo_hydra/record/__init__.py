"""Recording a run: the ``Experiment``, its hooks (one ``HOOKS`` table), abort handling, the git snapshot
and the dependency lock. Works without Hydra."""
