"""Every place homeapp uses a library's private names, patches a library class or overrides an
undocumented library method: one module per library, installed by install(), which create_app
calls before it builds any library object. Importing replaces nothing.

docs/upgrading.md has a row for each seam (tests/test_seams.py scans the code and holds both to
it); versions.py has the library versions the tests cover, which install() checks first.
"""
import logging

from homeapp.config import ConfigError
from homeapp.seams import engineio, gevent, socketio, versions
from homeapp.seams.versions import COVERED  # noqa: F401 (the package's interface)

log = logging.getLogger("homeapp.transport")


class UnsupportedLibrary(ConfigError):
    """An installed library is outside the versions the seams are tested with."""


def check_versions(allow_untested=False):
    """Raises UnsupportedLibrary for the first library outside the versions its tests cover;
    with allow_untested (tools.upgrade_check's runs), logs each one as a warning instead."""
    for refusal in versions.refusals():
        if not allow_untested:
            raise UnsupportedLibrary(refusal)
        log.warning("HOMEAPP_ALLOW_UNTESTED_LIBRARIES: starting anyway: %s", refusal)


def install(config):
    """Check the libraries' versions, then install every seam, with the limits in `config`.
    Calling it again only applies the settings again.

    Raises UnsupportedLibrary.
    """
    check_versions(config["ALLOW_UNTESTED_LIBRARIES"])
    gevent.install()
    engineio.install(config)
    socketio.install()
