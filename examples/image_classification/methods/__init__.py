"""Training methods: one Python file and one YAML (``conf/method/<name>.yaml``) each.

A method turns a batch into a loss. The training loop in ``train.py`` is shared by all methods, so adding
a method is one file here plus one YAML file; nothing else changes.
"""
from .base import Method

__all__ = ["Method"]
