"""GFlowNets: crystals sampled in proportion to a reward, over the Wyckoff token grammar of
:mod:`xtalgen.models.autoregressive`. Not built yet."""
