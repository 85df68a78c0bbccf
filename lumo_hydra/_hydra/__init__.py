"""The Hydra edge: the callback, the job recorder, Hydra's facts read from the config, the decorator and
sweep validation. The only package of lumo_hydra that imports ``hydra`` at module level."""
