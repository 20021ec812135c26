"""What a load balancer and Prometheus ask: /healthz, /readyz and /metrics."""
import redis
from flask import Blueprint, Response, current_app, jsonify, request
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from homeapp.identity import bearer
from homeapp.store.redis_client import connect
from homeapp.telemetry import metrics

bp = Blueprint("ops", __name__)
_PROBE = "homeapp.readiness_redis"


def init_app(app):
    """Register the endpoints; readiness gets its own Redis client with a short timeout.

    Its own client, so that a probe never waits behind the presence store's pool and an
    unreachable Redis answers within HOMEAPP_READY_TIMEOUT.
    """
    probe = None
    if app.config["REDIS_URL"]:
        probe = connect(app.config["REDIS_URL"], app.config["READY_TIMEOUT"])
    app.extensions[_PROBE] = probe
    app.register_blueprint(bp)


@bp.get("/healthz")
def healthz():
    """The process is up and serving HTTP; nothing else is checked."""
    return jsonify(status="ok")


def _not_ready_reason():
    """Why this process should get no new connections, or None when it should."""
    hub = current_app.extensions["homeapp"]
    if hub.draining:
        return "shutting down"
    if hub.health.down:  # until the presence keeper has seen Redis back and re-asserted
        return "redis unreachable: presence events answer UNAVAILABLE"
    probe = current_app.extensions[_PROBE]
    if probe is not None:
        try:
            probe.ping()
        except redis.RedisError as exc:
            # not reported to hub.health: one slow probe must not start an outage
            metrics.REDIS_ERRORS.inc()
            # the presence store and the message queue both live at REDIS_URL
            return f"redis unreachable: {exc}"
    return None


@bp.get("/readyz")
def readyz():
    """200 when this process can take connections; 503 with the reason when it cannot."""
    reason = _not_ready_reason()
    if reason is not None:
        return jsonify(status="unavailable", reason=reason), 503
    return jsonify(status="ready")


def _authorized():
    token = current_app.config["METRICS_TOKEN"]
    if token is None:
        return True
    presented = bearer.presented_token(request.headers)
    return presented is not None and bearer.matches_any(presented, [token])


@bp.get("/metrics")
def metrics_page():
    """This process's metrics in Prometheus text format; a Bearer token when one is set."""
    if not _authorized():
        return Response("metrics need a bearer token\n", 401, {"WWW-Authenticate": "Bearer"},
                        mimetype="text/plain")
    return Response(generate_latest(REGISTRY), mimetype=None, content_type=CONTENT_TYPE_LATEST)
