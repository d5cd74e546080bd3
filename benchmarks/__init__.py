"""Benchmarks: the figures of `leadscore bench AREA --json`, one module per area.

identity.py, features.py, training.py, serving.py and segments.py measure the stage of
the same name against the issue's goals. For the serving figures: reference_service.py is
the bare BentoML endpoint they are set against, servers.py starts and stops the
`bentoml serve` processes, load.py is the load generator (aiohttp).

Only the CLI (`leadscore bench`) and the tests import this package: no stage does
(an import-linter contract in pyproject.toml), and it is not in the Bento
(bentofile.yaml's include list leaves benchmarks/ out).
"""
