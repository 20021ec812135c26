"""Reading an HTTP request's body without letting its sender decide how much is held."""


def body_within(environ, limit):
    """The WSGI request's body, or None when it is bigger than `limit` bytes: refused from its
    Content-Length without reading, or once a chunked body passes the limit; never more than
    limit + 1 bytes are read."""
    if int(environ.get("CONTENT_LENGTH") or 0) > limit:
        return None
    stream, chunks, size = environ["wsgi.input"], [], 0
    while size <= limit:  # without a Content-Length (chunked), the stream says where it ends
        chunk = stream.read(limit + 1 - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks) if size <= limit else None
