"""The sales portrait of one person: profile, company, group, timeline, scores, colleagues.

One module a step: `schemas` (the response models), `errors` (what a request can fail
with), `reader` (reading the middle layer, tags and score history into a `Portrait`),
`wording` (each interaction in words), `charts` (the waterfall and score history as SVG
geometry) and `render` (the HTML page). Import them by name: this package imports none of
them, so that naming the response models does not load the reader's DuckDB and pandas.
"""
