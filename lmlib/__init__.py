"""lmlib: the library built, one idea per module, in *LLMs from First Principles*.

Every chapter of the course derives a piece of a language model in a notebook and then imports
the finished version from here. Modules are imported explicitly (``from lmlib import data``);
importing the package itself is cheap and pulls in nothing heavy.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
