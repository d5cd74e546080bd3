"""The service's HTML pages: the Jinja environment of serving/templates/, the sign-in and error pages.

Every page is a template rendered with autoescaping on, so a value (a key's next page, an error
naming a pid) is always text, never markup. The portrait's page (portrait/render.py) is rendered
the same way, with its own formatting filters.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path
from urllib.parse import quote

import jinja2

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"


def template_environment(**filters: Callable[..., str]) -> jinja2.Environment:
    """A Jinja environment over serving/templates/ with `filters`: autoescaped, and strict, so a
    name the template uses but the caller did not give is an error rather than an empty string."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES_DIR), autoescape=True,
                             trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)
    env.filters.update(filters)
    return env


@cache
def _environment() -> jinja2.Environment:
    return template_environment()


def login_page(next_path: str, failed: bool) -> str:
    """The sign-in form, which goes on to `next_path` (URL-quoted); `failed` after an unknown key."""
    return _environment().get_template("login.html").render(
        next=quote(next_path, safe="/?=&"), error="Unknown key, try again." if failed else "")


def error_page(status: int, message: str) -> str:
    """An error for a browser: the HTTP status and the message (element id `message`)."""
    return _environment().get_template("error.html").render(status=status, message=message)
