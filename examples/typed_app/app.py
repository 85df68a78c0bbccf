"""A small Hydra app with class-based, typed Params.

    python examples/typed_app/app.py                       # defaults
    python examples/typed_app/app.py alpha=0.5 optim=adam  # a config group from conf/optim/
    python examples/typed_app/app.py alpha=20              # exits 1: alpha must be in [0, 10]
    python examples/typed_app/app.py -m alpha=1,5,20       # exits 1 before any job starts
"""
from __future__ import annotations

import lumo_hydra
from lumo_hydra import Params, arange, choice


class OptimParams(Params):
    name: str = choice("sgd", "adam")
    """the optimizer"""
    lr: float = arange(default=0.1, left=0, right=1)
    """learning rate"""


class TrainParams(Params):
    dataset: str = choice("cifar10", "cifar100")
    alpha: float = arange(default=1, left=0, right=10)
    epochs: int = 10
    optim: OptimParams = OptimParams()


TrainParams.store(name="train_schema")  # conf/config.yaml extends it
OptimParams.store(name="optim_schema", group="optim")


@lumo_hydra.main(config_path="conf", config_name="config", version_base="1.3")
def train(params: TrainParams) -> float:
    # params is a typed, validating TrainParams (TrainParams.from_config(cfg))
    score = params.alpha * params.optim.lr * params.epochs
    print(f"dataset={params.dataset} alpha={params.alpha} optim={params.optim.name} lr={params.optim.lr} score={score}")
    return score


if __name__ == "__main__":
    train()
