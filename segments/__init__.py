"""Segments: marketers select people by attributes, behaviour and predicted tier.

Not built yet (its own issue): segment definitions compiled to parameterised
DuckDB SQL over the middle layer and the latest scores, with live counts.
"""
