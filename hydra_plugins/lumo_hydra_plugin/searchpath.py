"""Adds the config groups shipped with lumo-hydra (``lumo-pkg://lumo_hydra.conf``: see ``config_source``) to
Hydra's search path."""
from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin

from .config_source import LumoPackageConfigSource  # noqa: F401  (Hydra registers the scheme from here)


class LumoHydraSearchPathPlugin(SearchPathPlugin):
    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        search_path.append(provider="lumo_hydra", path="lumo-pkg://lumo_hydra.conf")
