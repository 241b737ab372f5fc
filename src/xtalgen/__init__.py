"""xtalgen: generative modelling of crystalline materials.

The public API starts from :class:`xtalgen.Crystal` (the crystal record), :mod:`xtalgen.io`
(files), :mod:`xtalgen.data` (benchmark datasets), :mod:`xtalgen.representations`,
the generators, :mod:`xtalgen.metrics` and the screening workflow.
"""

from xtalgen.crystal import Crystal, CrystalError
from xtalgen.errors import XtalgenError

__version__ = "0.1.0"
__all__ = ["Crystal", "CrystalError", "XtalgenError", "__version__"]
