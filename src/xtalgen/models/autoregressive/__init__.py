"""Autoregressive generators: the space-group-native Wyckoff-token transformer
(:mod:`xtalgen.models.autoregressive.wyckoff`) on the shared transformer core
(:mod:`xtalgen.nn.transformer`)."""
