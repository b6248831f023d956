"""castkeep: consented, identity-preserving, signed marketing assets."""

__version__ = "0.1.0"
