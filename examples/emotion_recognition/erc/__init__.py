"""The ERC template's code: ``meld`` (MELD's layout, read and checked), ``synthetic`` (the generated stand-in),
``data`` (what the dataset specs wire together, and the collation), ``models``, ``engine`` (the training
loop) and ``params`` (the typed parameters). A model is one class here plus one YAML in ``conf/model/``."""
