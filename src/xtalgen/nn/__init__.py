"""Shared networks: the periodic E(3)-invariant backbone and its building blocks."""

from xtalgen.nn.backbone import Backbone, BackboneConfig, BackboneOutput, types_to_onehot

__all__ = ["Backbone", "BackboneConfig", "BackboneOutput", "types_to_onehot"]
