"""Segments: marketers select people by attributes, behaviour in time windows, tags and
predicted tier, with live counts.

A segment is data (dsl.py), compiled to one parameterised DuckDB query (compile.py) over
the middle layer, tags and latest scores loaded in memory (world.py), run by the engine
(engine.py), served by a FastAPI router with a builder page (api.py), timed by
benchmarks/segments.py (apart from the stage).
"""

from leadscore.segments.dsl import Segment, SegmentError, load_segment, parse_segment
from leadscore.segments.engine import SegmentEngine

__all__ = ["Segment", "SegmentEngine", "SegmentError", "load_segment", "parse_segment"]
