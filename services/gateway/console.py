"""The web console's pages, served by the gateway under /console/ from the same origin as the API.

The console is built by Vite into console/dist (`make console`; the image builds it in a stage of its
own). Hashed assets are kept by browsers for a year; index.html is asked again each time, so a new
release shows at once. Every page carries a Content-Security-Policy of the same origin only: the
machines are offline, and nothing is fetched from anywhere else.
"""
import mimetypes
import os
import pathlib

from werkzeug.exceptions import NotFound as WerkzeugNotFound
from werkzeug.utils import redirect, send_from_directory

from services.gateway.http import api, problem

SOURCE_DIST = pathlib.Path(__file__).resolve().parents[2] / "console" / "dist"
# Element Plus sets inline styles on its components; scripts and everything else come from here only.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
       "font-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'; "
       "object-src 'none'")


def _page_headers(response):
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    return response


def _send(request, root, path, max_age):
    """A file of the build, as its precompressed .gz (scripts/precompress.mjs) when the browser takes gzip."""
    if "gzip" in request.headers.get("Accept-Encoding", "") and (root / f"{path}.gz").is_file():
        response = send_from_directory(root, f"{path}.gz", request.environ, max_age=max_age)
        response.headers["Content-Encoding"] = "gzip"
        response.mimetype = mimetypes.guess_type(path)[0] or "application/octet-stream"
    else:
        response = send_from_directory(root, path, request.environ, max_age=max_age)
    response.headers["Vary"] = "Accept-Encoding"
    return response


class ConsoleRoutes:

    def _console_dir(self):
        return pathlib.Path(self.config.get("CONSOLE_DIR") or SOURCE_DIST)

    def _index(self, request, root):
        response = _send(request, root, "index.html", 0)
        response.headers["Cache-Control"] = "no-cache"
        return _page_headers(response)

    @api("GET", "/")
    def console_home(self, request):
        return redirect("/console/", code=302)

    @api("GET", "/console")
    def console_bare(self, request):
        return redirect("/console/", code=301)

    @api("GET", "/console/")
    def console_index(self, request):
        return self.console_file(request, "")

    @api("GET", "/console/<path:path>")
    def console_file(self, request, path):
        root = self._console_dir()
        if not (root / "index.html").is_file():
            return problem(503, "Console not built", "the console's pages are not built here: run `make console` "
                                                    "(Node.js 20), or use the image, which carries them")
        if path.startswith("assets/"):
            try:
                response = _send(request, root, path, 365 * 24 * 3600)
            except WerkzeugNotFound:
                return problem(404, "Not Found", f"no console file {path}")
            response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
            return response
        # Any other path is a page of the console's router (a bookmark, a reload): the same index.html.
        if "." in os.path.basename(path):
            try:
                return _page_headers(_send(request, root, path, 3600))
            except WerkzeugNotFound:
                return problem(404, "Not Found", f"no console file {path}")
        return self._index(request, root)
