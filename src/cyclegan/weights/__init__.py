"""Pretrained weights: one table, one verified cache, one mirror variable."""
