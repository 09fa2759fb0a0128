"""Inqueue runtime library: the code both Lambda functions share, shipped as one layer.

Keep this module free of imports: the ingress cold start pays for every import.
"""

__version__ = "0.1.0"
