"""The floor for HTTP load: a Falcon app that only echoes the request body (no RPC at all)."""

from __future__ import annotations

import falcon


class Echo:
    def on_post(self, req: falcon.Request, resp: falcon.Response, **_: str) -> None:
        resp.data = req.bounded_stream.read()
        resp.content_type = "application/vnd.apache.arrow.stream"


app = falcon.App()
app.add_sink(Echo().on_post, prefix="/")
