"""Compatibility name for ``from lumo_hydra.experiment import Experiment``.

The experiment record lives in :mod:`lumo_hydra.record.experiment`.
"""
from lumo_hydra.record.experiment import *  # noqa: F401,F403
from lumo_hydra.record.experiment import __all__  # noqa: F401
