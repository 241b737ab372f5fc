"""Iterative generators: denoising diffusion (DiffCSP-style) and flow matching (FlowMM-style),
two processes driving the one periodic backbone (:mod:`xtalgen.nn.backbone`)."""

from xtalgen.models.iterative.generative import CrystalGenerativeModel, ModelConfig
from xtalgen.models.iterative.generator import IterativeGenerator

__all__ = ["CrystalGenerativeModel", "IterativeGenerator", "ModelConfig"]
