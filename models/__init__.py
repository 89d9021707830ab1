"""Shipped model bundles (data only): installed as ``dramapic_subs.bundled_models``."""
