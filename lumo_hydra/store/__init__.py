"""The store on disk (docs/store.md): its layout, run ids, the one writer and the one reader of a run.

Plain files only; nothing here imports Hydra or OmegaConf. Submodules are imported where used, so
``import lumo_hydra.store`` costs nothing.
"""
