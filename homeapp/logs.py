"""Logging, configured in one place."""
import logging


def configure_logging(level):
    """Human-readable lines on stderr at the configured level."""
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("homeapp").setLevel(level)
