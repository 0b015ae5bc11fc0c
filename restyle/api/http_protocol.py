"""uvicorn's HTTP protocol with the API's JSON error for requests too malformed to reach the app.

A request that cannot be parsed (``Content-Length: abc``, a broken request
line, headers over h11's size limit) never becomes an ASGI request: uvicorn
answers it itself, in plain text (``Invalid HTTP request received.``). The
protocol class below is uvicorn's own (the one ``--http auto`` picks: h11, or
httptools when installed) with that one answer replaced by the API's JSON
error shape (``bad_request``, 400, with a request ID), so every error the
service emits is JSON. ``restyle serve`` passes it to uvicorn (``http=``).
"""

from __future__ import annotations

import asyncio
import uuid

from uvicorn.protocols.http.h11_impl import H11Protocol

from restyle.api.middleware import REQUEST_ID_HEADER, json_error

MESSAGE = "malformed HTTP request (request line, headers or framing); nothing was processed"


def _error_body() -> tuple[bytes, list[tuple[bytes, bytes]]]:
    request_id = uuid.uuid4().hex
    body = json_error(400, "bad_request", MESSAGE, request_id)
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
        (REQUEST_ID_HEADER.encode(), request_id.encode()),
    ]
    return body, headers


class JSONErrorsH11Protocol(H11Protocol):
    """uvicorn's h11 protocol; a request h11 cannot parse is answered with the JSON error."""

    def send_400_response(self, msg: str) -> None:
        import h11

        body, headers = _error_body()
        try:
            output = self.conn.send(h11.Response(status_code=400, headers=headers, reason=b"Bad Request"))
            output = (output or b"") + (self.conn.send(h11.Data(data=body)) or b"")
            output += self.conn.send(h11.EndOfMessage()) or b""
            self.transport.write(output)
        except h11.LocalProtocolError:  # a response was already under way: nothing more can be said on it
            pass
        self.transport.close()


def _httptools_protocol() -> type[asyncio.Protocol] | None:
    try:
        import httptools  # noqa: F401
    except ImportError:
        return None
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class JSONErrorsHttpToolsProtocol(HttpToolsProtocol):
        """uvicorn's httptools protocol; a request httptools cannot parse is answered with the JSON error."""

        def send_400_response(self, msg: str) -> None:
            body, headers = _error_body()
            content = [b"HTTP/1.1 400 Bad Request\r\n"]
            for name, value in [*self.server_state.default_headers, *headers]:
                content.extend([name, b": ", value, b"\r\n"])
            content.extend([b"\r\n", body])
            self.transport.write(b"".join(content))
            self.transport.close()

    JSONErrorsHttpToolsProtocol.__qualname__ = JSONErrorsHttpToolsProtocol.__name__
    return JSONErrorsHttpToolsProtocol


# What ``--http auto`` would choose (httptools when installed, else h11), with the JSON 400.
JSONErrorsHttpToolsProtocol = _httptools_protocol()
HTTP_PROTOCOL: type[asyncio.Protocol] = JSONErrorsHttpToolsProtocol or JSONErrorsH11Protocol
