"""Adds the config groups shipped with lumo-hydra (``pkg://lumo_hydra.conf``) to Hydra's search path."""
from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin


class LumoHydraSearchPathPlugin(SearchPathPlugin):
    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        search_path.append(provider="lumo_hydra", path="pkg://lumo_hydra.conf")
