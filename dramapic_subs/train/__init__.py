"""Training and evaluation: feature tables, augmentation, grouped CV, reports.

Kept beside the product, not under it: it imports the analysis stages
(features, media, models) and nothing imports it back.
"""
