"""Which browser origins may open a socket (HOMEAPP_CORS_ORIGINS), as Engine.IO's cors_allowed_origins."""


def own_origins(environ):
    """The origins this request's own host answers as: direct, and as a proxy forwards it."""
    scheme, host = environ.get("wsgi.url_scheme", "http"), environ.get("HTTP_HOST")
    origins = {f"{scheme}://{host}"}
    forwarded_proto = environ.get("HTTP_X_FORWARDED_PROTO")
    forwarded_host = environ.get("HTTP_X_FORWARDED_HOST")
    if forwarded_proto or forwarded_host:
        origins.add("{}://{}".format((forwarded_proto or scheme).split(",")[0].strip(),
                                     (forwarded_host or host).split(",")[0].strip()))
    return origins


def allowed_origins(listed):
    """cors_allowed_origins for Engine.IO: None (same origin only) when nothing is listed,
    "*" when "*" is, else a check that admits the listed origins and the server's own,
    so the demo page it serves keeps working beside the listed front ends."""
    if not listed:
        return None
    if "*" in listed:
        return "*"
    listed = frozenset(listed)

    def is_allowed(origin, environ):
        return origin in listed or origin in own_origins(environ)
    return is_allowed
