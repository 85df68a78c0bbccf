"""``lumo_hydra.hydra_callback.LumoCallback``: the ``_target_`` of ``hydra/callbacks=lumo`` (a public name).

The callback lives in :mod:`lumo_hydra._hydra.callback`; this module keeps the name users put in YAML.
"""
from lumo_hydra._hydra.callback import LumoCallback

__all__ = ["LumoCallback"]
