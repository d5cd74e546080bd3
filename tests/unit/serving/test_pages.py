"""The sign-in and error pages: the form and message the browser tests use, every value escaped."""

from __future__ import annotations

from leadscore.serving.pages import error_page, login_page


def test_login_page_has_the_form_and_goes_on_to_the_quoted_next_path() -> None:
    page = login_page('/portrait/P1?format=html&pii=full"><script>', failed=False)
    assert '<input id="key" name="key" type="password"' in page
    assert 'name="next" value="/portrait/P1?format=html&amp;pii=full%22%3E%3Cscript%3E"' in page
    assert "<script>" not in page and "Unknown key" not in page


def test_login_page_after_an_unknown_key() -> None:
    assert '<p class="error">Unknown key, try again.</p>' in login_page("/", failed=True)


def test_error_page_shows_the_status_and_the_escaped_message() -> None:
    page = error_page(404, "unknown pid '<b>x</b>'")
    assert "<title>leadscore: 404</title>" in page and "<h2>404</h2>" in page
    assert '<p id="message">unknown pid &#39;&lt;b&gt;x&lt;/b&gt;&#39;</p>' in page
