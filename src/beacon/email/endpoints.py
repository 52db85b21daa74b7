"""The HTTP endpoints of e-mail tracking, as Starlette routes over :class:`EmailTracker`.

Mounted with the beacon app (relative to its mount point):

``GET /o/{token}.gif``
    The open pixel: records the open and answers a 1x1 transparent GIF,
    never cached. A token that fails verification records nothing and gets
    the same GIF with status 400 (so no broken-image icon shows in the message).
``GET|HEAD /c/{token}``
    A click: records it (``HEAD`` always as a machine) and answers ``302`` to
    the destination signed inside the token, whether or not the event could
    be stored. A token that fails verification gets a 400 page, never a redirect.
``GET /u/{token}``
    The unsubscribe confirmation page (a POST form; nothing recorded, since
    link scanners fetch every URL of a message).
``POST /u/{token}``
    One-click unsubscribe (RFC 8058): the opt-out is written to the lossless
    spool, then the page confirms it with ``200``. If it cannot be written the
    answer is ``503`` and nothing is confirmed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from beacon.email.exceptions import TokenError
from beacon.email.pages import PAGE_HEADERS, PageState, page_language, render_page
from beacon.email.tracker import EmailTracker
from beacon.email.urls import location_header

__all__ = ["TRANSPARENT_GIF", "email_routes"]

#: The smallest transparent 1x1 GIF (43 bytes).
TRANSPARENT_GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)
logger = logging.getLogger("beacon.email")

_NO_STORE = {
    "Cache-Control": "no-store, no-cache, must-revalidate, max-age=0",
    "Pragma": "no-cache",
}
# Real User-Agents are far shorter; longer ones are cut before classification.
_MAX_USER_AGENT = 512


def _page(request: Request, tracker: EmailTracker, state: PageState, status: int) -> Response:
    language = page_language(
        request.query_params.get("lang"), request.headers.get("accept-language")
    )
    return HTMLResponse(
        render_page(state, language, tracker.site), status_code=status, headers=PAGE_HEADERS
    )


def email_routes(tracker: EmailTracker) -> list[Route]:
    """The routes of the e-mail endpoints, bound to ``tracker``."""

    def user_agent(request: Request) -> str:
        return request.headers.get("user-agent", "")[:_MAX_USER_AGENT]

    def record(action: Callable[[], object]) -> None:
        # The GIF and the redirect go out whatever happens to the recording.
        try:
            action()
        except Exception:
            tracker.failures["record_failed"] += 1
            logger.debug("e-mail event not recorded", exc_info=True)

    def rejected(error: TokenError) -> None:
        tracker.failures[f"invalid_token:{error.reason}"] += 1

    async def open_pixel(request: Request) -> Response:
        try:
            token = tracker.verify("open", request.path_params["token"])
        except TokenError as error:
            rejected(error)
            return Response(TRANSPARENT_GIF, 400, headers=_NO_STORE, media_type="image/gif")
        agent, method = user_agent(request), request.method
        record(lambda: tracker.record_open(token, user_agent=agent, method=method))
        return Response(TRANSPARENT_GIF, headers=_NO_STORE, media_type="image/gif")

    async def click(request: Request) -> Response:
        try:
            token = tracker.verify("click", request.path_params["token"])
        except TokenError as error:
            rejected(error)
            return _page(request, tracker, "invalid", 400)
        agent, method = user_agent(request), request.method
        record(lambda: tracker.record_click(token, user_agent=agent, method=method))
        return RedirectResponse(location_header(token.url), 302, headers=_NO_STORE)

    async def unsubscribe(request: Request) -> Response:
        try:
            token = tracker.verify("unsubscribe", request.path_params["token"])
        except TokenError as error:
            rejected(error)
            return _page(request, tracker, "invalid", 400)
        if request.method != "POST":
            return _page(request, tracker, "confirm", 200)
        try:
            tracker.record_unsubscribe(token, user_agent=user_agent(request))
        except Exception:
            tracker.failures["unsubscribe_failed"] += 1
            logger.warning("opt-out not written, answered 503", exc_info=True)
            return _page(request, tracker, "unavailable", 503)
        return _page(request, tracker, "done", 200)

    return [
        Route("/o/{token}.gif", open_pixel, methods=["GET"]),
        Route("/c/{token}", click, methods=["GET", "HEAD"]),
        Route("/u/{token}", unsubscribe, methods=["GET", "POST"]),
    ]
