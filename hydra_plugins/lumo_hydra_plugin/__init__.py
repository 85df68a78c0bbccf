"""Hydra-discovered part of lumo-hydra. Hydra imports this at every start: keep it tiny."""
