"""``/``: a page where a person picks a series and a scenario and sees the chart (no CDN)."""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

router = APIRouter(tags=["page"])


@router.get("/", response_class=HTMLResponse)
def index() -> HTMLResponse:
    """The chart page: plain HTML and a few lines of JavaScript from /static."""
    html = resources.files("service").joinpath("static", "index.html").read_text("utf-8")
    return HTMLResponse(html)
