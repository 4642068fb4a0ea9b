"""``/``: a page where a person picks a series and a scenario and sees the chart; ``/docs``: the
API's Swagger UI. Both load only files this server serves (``/static``), never a CDN."""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse

router = APIRouter(tags=["page"])


@router.get("/", response_class=HTMLResponse)
def index() -> HTMLResponse:
    """The chart page: plain HTML and a few lines of JavaScript from /static."""
    html = resources.files("service").joinpath("static", "index.html").read_text("utf-8")
    return HTMLResponse(html)


@router.get("/docs", include_in_schema=False)
def docs() -> HTMLResponse:
    """Swagger UI from the vendored swagger-ui-dist (``static/swagger``)."""
    return get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="Border encounters forecasts - API",
        swagger_js_url="/static/swagger/swagger-ui-bundle.js",
        swagger_css_url="/static/swagger/swagger-ui.css",
        swagger_favicon_url="/static/swagger/favicon-32x32.png",
    )
