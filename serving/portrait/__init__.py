"""The sales portrait of one person: profile, company, group, timeline, scores, colleagues.

One module a step: `schemas` (the response models), `reader` (reading the middle layer,
tags and score history into a `Portrait`), `wording` (each interaction in words), `charts`
(the waterfall and score history as SVG geometry) and `render` (the HTML page).
"""

from leadscore.serving.portrait.reader import PortraitReader, PortraitUnavailable, UnknownPerson
from leadscore.serving.portrait.render import render_portrait_html
from leadscore.serving.portrait.schemas import Portrait

__all__ = ["Portrait", "PortraitReader", "PortraitUnavailable", "UnknownPerson", "render_portrait_html"]
