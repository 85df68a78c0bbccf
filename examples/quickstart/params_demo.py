"""The seed's Params snippet, unchanged apart from the import (``from lumo_hydra`` instead of ``from lumo``).

    python examples/quickstart/params_demo.py --dataset=cifar100 --alpha=0.2
    # {'dataset': 'cifar100', 'alpha': 0.2}
    # cifar100
    python examples/quickstart/params_demo.py --help          # every parameter, its default and allowed values
    python examples/quickstart/params_demo.py --alpha=20      # error naming alpha, 20 and [0, 10]
    python examples/quickstart/params_demo.py --datset=x      # error: unknown key, did you mean 'dataset'?
"""
from lumo_hydra import Params

params = Params()
params.dataset = params.choice('cifar10', 'cifar100')
params.alpha = params.arange(default=1, left=0, right=10)
params.from_args()  # python3 train.py --dataset=cifar100 --alpha=0.2
print(params.to_dict())  # {"dataset": "cifar100", "alpha": 0.2}

print(params.dataset)
