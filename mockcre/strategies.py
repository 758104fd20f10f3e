"""Hypothesis strategies for both dialects (``requests``, ``responses``, ``mutations``): the public import path.

They live with the other client-side tools in :mod:`mockcre.tools.strategies`; users write
``from mockcre import strategies``.
"""

from mockcre.tools.strategies import *  # noqa: F403 - the public names, as listed in its __all__
from mockcre.tools.strategies import __all__  # noqa: F401
