"""Issue 18's own check of the evented frame path: a server holding 5,000 idle sockets still
answers an event from each of 100 of them within a second."""
import resource
import time

import pytest
import websocket

from tests.conftest import FAST
from tests.live import new_user_id, raw_socket

SOCKETS = 5000
ASKING = 100  # of them, spread over the whole set
FILES = SOCKETS + 1000  # both ends of every socket live on this machine, one in each process


@pytest.fixture(scope="module")
def evented_server(server_factory):
    """An evented server allowed the descriptors (it inherits this process's limit); its pings
    are slow, so that no idle socket is dropped for not answering while the rest connect."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert hard == resource.RLIM_INFINITY or hard >= FILES, \
        f"the hard limit on open files is {hard}: {FILES} are needed (ulimit -Hn)"
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, FILES), hard))
    try:
        yield server_factory(HOMEAPP_PING_INTERVAL=600,
                             HOMEAPP_PING_TIMEOUT=600, **FAST)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_5000_idle_sockets_and_an_event_from_each_of_100_answered_within_a_second(evented_server):
    sockets = []
    try:
        for _ in range(SOCKETS):
            user = new_user_id()
            sockets.append((user, raw_socket(evented_server, user)))  # past the Socket.IO connect
        asking = sockets[::SOCKETS // ASKING]
        sent = {}
        for ack, (user, ws) in enumerate(asking):
            ws.send(f'42{ack}["joinRoom","{user}"]')
            sent[ack] = time.monotonic()
        late = []
        for ack, (user, ws) in enumerate(asking):
            ws.settimeout(max(0.001, sent[ack] + 1 - time.monotonic()))
            try:
                answer = ws.recv()
            except websocket.WebSocketTimeoutException:
                late.append(user)
                continue
            assert answer == f'43{ack}[{{"ok":true}}]'
        assert late == [], f"{len(late)} of {ASKING} were not answered within a second"
    finally:
        for _, ws in sockets:
            ws.close()
