"""The sales portrait of one person: profile, company, group, timeline, scores, colleagues."""

from leadscore.serving.portrait.reader import (
    Portrait,
    PortraitReader,
    PortraitUnavailable,
    UnknownPerson,
    describe_event,
    render_portrait_html,
    waterfall,
)

__all__ = ["Portrait", "PortraitReader", "PortraitUnavailable", "UnknownPerson", "describe_event",
           "render_portrait_html", "waterfall"]
