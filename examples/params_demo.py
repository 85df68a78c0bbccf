"""The seed's Params snippet, unchanged apart from the import.

    python examples/params_demo.py --dataset=cifar100 --alpha=0.2
    python examples/params_demo.py --help
    python examples/params_demo.py --alpha=20        # error: alpha must be in [0, 10]
"""
from lumo_hydra import Params
params = Params()
params.dataset = params.choice('cifar10', 'cifar100')
params.alpha = params.arange(default=1, left=0, right=10)
params.from_args()  # python3 train.py --dataset=cifar100 --alpha=0.2
print(params.to_dict())  # {"dataset": "cifar100", "alpha": 0.2}
print(params.dataset)
