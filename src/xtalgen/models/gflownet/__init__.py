"""GFlowNets: complete crystals (space group, composition, Wyckoff sites, coordinates, lattice)
sampled in proportion to a reward, in a chemical system the user chooses, over the same Wyckoff
token grammar as the Wyckoff transformer (:mod:`xtalgen.representations.wyckoff_grammar`).

Modules: ``env`` (states, legal actions, decoding, the log-reward floor for invalid terminals),
``policy`` (the forward policy on the shared transformer core), ``losses`` (trajectory balance),
``rewards`` (exp(-beta E) rewards by name; the CHGNet ones live in
:mod:`xtalgen.properties.rewards`), ``model`` (config, the model with its ``train_step`` hook,
the generator; family ``"gflownet"``), ``toy`` (the enumerable toy environment and the
sampled-frequency vs reward comparison). Training a system end to end (the function behind
``xtalgen gflownet train``) is :func:`xtalgen.pipelines.gflownet.train_gflownet`, which sits
above the training loop.
"""
