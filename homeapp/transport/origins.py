"""Which browser origins may open a socket (HOMEAPP_CORS_ORIGINS), as Engine.IO's cors_allowed_origins."""


def own_origins(environ, trust_proxy):
    """The origins this request's own host answers as: direct and, when a proxy of ours sets
    X-Forwarded-Proto and X-Forwarded-Host (trust_proxy), as that proxy forwards it.

    Without trust_proxy those headers are ignored: a browser cannot set them, so only a
    non-browser client would send them, to pass a foreign Origin off as this server's own.
    """
    scheme, host = environ.get("wsgi.url_scheme", "http"), environ.get("HTTP_HOST")
    origins = {f"{scheme}://{host}"}
    if not trust_proxy:
        return origins
    forwarded_proto = environ.get("HTTP_X_FORWARDED_PROTO")
    forwarded_host = environ.get("HTTP_X_FORWARDED_HOST")
    if forwarded_proto or forwarded_host:
        origins.add("{}://{}".format((forwarded_proto or scheme).split(",")[0].strip(),
                                     (forwarded_host or host).split(",")[0].strip()))
    return origins


def allowed_origins(listed, trust_proxy=False):
    """cors_allowed_origins for Engine.IO: "*" when "*" is listed, else a check that admits the
    listed origins and the server's own, so the demo page it serves keeps working beside the
    listed front ends. Always a check of ours, never Engine.IO's same-origin default, which
    believes forwarded headers from anyone."""
    if "*" in listed:
        return "*"
    listed = frozenset(listed)

    def is_allowed(origin, environ):
        return origin in listed or origin in own_origins(environ, trust_proxy)
    return is_allowed
