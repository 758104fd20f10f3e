"""The bottom layer: domain constants, JSON text, messages' wording, bundled files, memory settings.

Everything above may import it; it imports nothing of mockcre.
"""

__version__ = "0.1.0"
