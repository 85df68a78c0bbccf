"""The seed's Experiment snippet, unchanged apart from the import.

    python examples/quickstart/experiment_demo.py
    LUMO_HOME=/tmp/store python examples/quickstart/experiment_demo.py   # record somewhere else

Each run gets its own folder ``$LUMO_HOME/experiments/my_exp_a/<YYMMDD.NNN.RRt>/`` (default
``~/.lumo-hydra``) with run.json, metrics.json, history.jsonl, heartbeat and the params.json written
below; the code snapshot goes to a side ref ``refs/lumo/snapshots/my_exp_a/<run id>`` of the
repository you run it from, and a line is added to ``$LUMO_HOME/diary/<date>.log``.
"""
from lumo_hydra import Params, SimpleExperiment

params = Params(); params.alpha = params.arange(default=1, left=0, right=10)
exp = SimpleExperiment(exp_name='my_exp_a')
exp.start()
params.to_json(exp.mk_ipath('params.json'))
exp.dump_metric('Acc', 0.1, cmp='max')
print(exp.properties)
exp.end()
