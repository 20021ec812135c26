"""Chaos, live and short: two server processes on one private Redis with recovery on, 100 real
socket.io-client 4.8 sockets in Node (tests/node/chaos_client.js) in 50 private rooms of two,
every socket sending `message` after `message`; meanwhile links are cut (client drops), Redis
stalls shortly (SIGSTOP/SIGCONT, shorter than the ack timeout) and long (longer than it), one
process is SIGKILLed right after one of its sockets was acknowledged and a new process takes its
place, the new one is SIGKILLed too while Redis stalls (right after an ack, if one comes) and
replaced, and Redis restarts on the same port, empty. Then a checker reads everything the sockets
said. The randomness (who connects through which link, what is cut and when, the pauses
between messages) follows from one seed, printed; CHAOS_SEED=<n> runs a seed again.

What the checker requires (docs/protocol.md, "Answers"; docs/recovery.md):

- **A message acknowledged `ok`** is delivered exactly once, in order, to each rightful
  recipient: `messageRoom` to both members of its room, `messageResponseNotify` to the member who
  did not send it. A socket is a *rightful* recipient of a message when the message was sent
  after the start of the socket's last session: the time it was joined to its channels
  (addOnlineUser, joinRoom, chatRoom.join acknowledged) after its last connect that was not a
  recovery. A socket that recovered (`socket.recovered`), on the same process or another, keeps
  its session: it must get everything sent meanwhile. A socket whose reconnect got a fresh
  session was told it may have missed what was sent before: it is excused for exactly those
  messages, and for nothing sent after it joined again.
- **Nothing twice, nothing out of order**, for every socket, whatever the ack: each sender's
  messages carry their number, and each socket gets a sender's numbers each at most once and
  increasing.
- **A message answered UNAVAILABLE** reaches nobody, ever.
- Messages whose ack never came (the process died, the socket dropped) may be delivered or not.
"""
import json
import os
import random
import signal
import subprocess
import tempfile
import threading
import time
from collections import defaultdict

from tests.cluster import UNLIMITED, Cluster
from tests.credentials import NODE_DIR
from tests.link import Link
from tests.live import new_user_id
from tests.processes import wait_until
from tests.test_live_recovery import require_socket_io_client

DRIVER = NODE_DIR / "chaos_client.js"
PAIRS = 50
LINKS = 4  # two into each process at first: a cut drops about a quarter of the sockets
ENV = {**UNLIMITED, "HOMEAPP_RECOVERY_SECONDS": 60, "HOMEAPP_ACK_TIMEOUT": 3,
       "HOMEAPP_REDIS_TIMEOUT": 1, "HOMEAPP_PRESENCE_TIMEOUT": 30}
# longer than any ack waits here (past the ack timeout, one written to a stalled Redis waits for
# the stall's end and a try): a "timeout" is a lost answer
CLIENT_ACK_TIMEOUT_MS = 15000
CHAT = ("messageRoom", "messageResponseNotify")


class Driver:
    """The Node process and what it said, each line a dict, in order."""

    def __init__(self, sockets, seed):
        require_socket_io_client()
        self.said = []
        self.changed = threading.Condition()
        self.on_line = None  # called with each line in the reader's thread
        config = {"seed": seed, "pauseMs": [300, 900], "ackTimeoutMs": CLIENT_ACK_TIMEOUT_MS,
                  "sockets": sockets}
        handle, self.config_path = tempfile.mkstemp(prefix="homeapp-chaos-", suffix=".json")
        with os.fdopen(handle, "w") as out:
            json.dump(config, out)
        self.proc = subprocess.Popen(["node", str(DRIVER), self.config_path], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            said = json.loads(line)
            if self.on_line is not None:
                self.on_line(said)
            with self.changed:
                self.said.append(said)
                self.changed.notify_all()

    def lines(self):
        with self.changed:
            return list(self.said)

    def tell(self, **command):
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()

    def close(self):
        if self.proc.poll() is None:
            try:
                self.tell(exit=True)
                self.proc.wait(10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait(5)
        os.unlink(self.config_path)


def check(sockets, lines):
    """Every violation of the module's rules, as text; and a summary of what was checked."""
    user_of = {s: spec["userID"] for s, spec in enumerate(sockets)}
    socket_of = {user: s for s, user in user_of.items()}
    sent, answers = {}, {}
    fresh_joins = defaultdict(list)   # socket -> [(t of a fresh connect, t joined after it)]
    recovered = 0
    got = defaultdict(list)           # (socket, event, sender socket) -> [k in arrival order]
    arrived = defaultdict(list)       # the same -> [t of each]
    recoveries = defaultdict(list)    # socket -> [t of each recovered connect]
    for line in lines:
        s = line.get("s")
        if "connect" in line:
            if line["recovered"]:
                recovered += 1
                recoveries[s].append(line["t"])
            else:
                fresh_joins[s].append([line["t"], None])
        elif "joined" in line:
            fresh_joins[s][-1][1] = line["t"]
        elif "sent" in line:
            sent[(s, line["k"])] = line["t"]
        elif "ack" in line:
            answers[(s, line["k"])] = line["ack"]
        elif line.get("event") in CHAT:
            got[(s, line["event"], socket_of.get(line["from"]))].append(line["k"])
            arrived[(s, line["event"], socket_of.get(line["from"]))].append(line["t"])

    def session_start(s):
        """When the socket's last session began to be owed everything: joined after its last fresh
        connect; never, when it did not join again."""
        _, joined = fresh_joins[s][-1]
        return float("inf") if joined is None else joined

    problems = []
    for key, ks in got.items():
        for i in range(1, len(ks)):
            if ks[i] <= ks[i - 1]:
                problems.append(f"socket {key[0]} got {key[1]} of {key[2]}#{ks[i]} after #{ks[i - 1]} "
                                f"(at {arrived[key][i - 1]} and {arrived[key][i]} ms; the socket "
                                f"recovered at {recoveries[key[0]]} ms)")
    unavailable = {m for m, a in answers.items() if a == "UNAVAILABLE"}
    for (s, event, sender), ks in got.items():
        for k in ks:
            if (sender, k) in unavailable:
                problems.append(f"socket {s} got {event} of {sender}#{k}, answered UNAVAILABLE")
    owed = 0
    for (sender, k), answer in answers.items():
        if answer != "ok":
            continue
        peer = sender ^ 1
        for recipient, event in ((sender, "messageRoom"), (peer, "messageRoom"),
                                 (peer, "messageResponseNotify")):
            if sent[(sender, k)] < session_start(recipient):
                continue  # its fresh session told it it may have missed this one
            owed += 1
            if k not in got.get((recipient, event, sender), ()):
                problems.append(f"socket {recipient} never got {event} of {sender}#{k}, acknowledged ok "
                                f"at {sent[(sender, k)]} ms; its last session began at "
                                f"{session_start(recipient)} ms")
    tally = defaultdict(int)
    for answer in answers.values():
        tally[answer] += 1
    summary = (f"{len(sent)} messages sent: {dict(tally)}; {owed} deliveries owed and checked; "
               f"{recovered} recoveries, {sum(len(v) - 1 for v in fresh_joins.values())} fresh sessions")
    return problems, summary, tally


def test_every_acknowledged_message_reaches_its_rightful_recipients_once_in_order():
    seed = int(os.environ.get("CHAOS_SEED") or random.randrange(2**32))
    print(f"chaos seed: {seed} (CHAOS_SEED={seed} runs it again)")
    rng = random.Random(seed)
    cluster = Cluster(2, **ENV)
    links = [Link(cluster[i * 2 // LINKS]) for i in range(LINKS)]
    target = [i * 2 // LINKS for i in range(LINKS)]  # which process each link leads to
    driver = None
    try:
        users = [new_user_id() for _ in range(2 * PAIRS)]
        through = [rng.randrange(LINKS) for _ in users]
        sockets = []
        for s, user in enumerate(users):
            peer = users[s ^ 1]
            room = ":".join(sorted((user, peer), key=int))
            sockets.append({"url": links[through[s]].url, "userID": user, "room": room, "peerID": peer})
        driver = Driver(sockets, seed)
        wait_until(lambda: len({line["s"] for line in driver.lines() if "joined" in line}) == len(sockets),
                   60, "not every socket joined")
        cluster.wait_for_queue(2)

        def cut(link_index, to):
            links[link_index].cut()
            time.sleep(rng.uniform(0.3, 1.5))
            links[link_index].restore(cluster[to])
            target[link_index] = to

        def stall(seconds):
            cluster.redis.proc.send_signal(signal.SIGSTOP)
            try:
                time.sleep(seconds)
            finally:
                cluster.redis.proc.send_signal(signal.SIGCONT)

        def kill_first_process(within):
            """SIGKILL the first process as soon as one of its sockets is acknowledged ok, or after
            `within` seconds if none is. Returns whether an ack came first."""
            killed = threading.Event()

            def on_line(line):
                if line.get("ack") == "ok" and target[through[line["s"]]] == 0 and not killed.is_set():
                    killed.set()
                    cluster[0].proc.send_signal(signal.SIGKILL)
            driver.on_line = on_line
            acked = killed.wait(within)
            driver.on_line = None
            if not acked:
                cluster[0].proc.send_signal(signal.SIGKILL)
            cluster[0].proc.wait(10)
            return acked

        def replace_first_process():
            """Its sockets reconnect to the second; a new process takes its place."""
            for i in range(LINKS):
                if target[i] == 0:
                    links[i].restore(cluster[1])
                    target[i] = 1
            replacement = cluster.add_process()
            cluster.processes[:] = [replacement, cluster.processes[1]]

        driver.tell(start=True)
        time.sleep(4)
        cut(rng.randrange(LINKS), rng.randrange(2))                # client drops
        time.sleep(3)
        stall(rng.uniform(1.0, 1.8))                               # shorter than the ack timeout
        time.sleep(4)
        stall(rng.uniform(5.5, 7.0))                               # longer: UNAVAILABLE
        time.sleep(4)
        assert kill_first_process(20), "no socket of the first process was acknowledged"
        replace_first_process()                                    # a process dies right after an ack
        time.sleep(3)
        cut(rng.randrange(LINKS), 0)                               # some sockets move to it
        time.sleep(4)
        # and again while Redis stalls, once the outbox's sender waits on a write Redis does not
        # answer: the old code acknowledged what queued behind it, and lost it with the process
        cluster.redis.proc.send_signal(signal.SIGSTOP)
        try:
            time.sleep(rng.uniform(1.2, 1.8))
            kill_first_process(2.0)
            time.sleep(0.3)
        finally:
            cluster.redis.proc.send_signal(signal.SIGCONT)
        replace_first_process()
        time.sleep(3)
        cut(rng.randrange(LINKS), 0)
        time.sleep(3)
        cluster.redis.stop()                                       # Redis restarts, empty
        time.sleep(rng.uniform(0.5, 1.5))
        cluster.redis.start()
        time.sleep(6)
        cut(rng.randrange(LINKS), rng.randrange(2))
        time.sleep(4)
        driver.tell(stop=True)

        def answered():
            lines = driver.lines()
            return len([1 for line in lines if "sent" in line]) == len([1 for line in lines if "ack" in line])
        wait_until(answered, CLIENT_ACK_TIMEOUT_MS / 1000 + 5, "some messages were never answered")
        time.sleep(4)  # anything late would show now
        lines = driver.lines()
        problems, summary, tally = check(sockets, lines)
        print(summary)
        if problems:
            handle, path = tempfile.mkstemp(prefix="homeapp-chaos-", suffix=".jsonl")
            with os.fdopen(handle, "w") as out:
                out.write(json.dumps({"sockets": sockets, "through": through}) + "\n")
                out.writelines(json.dumps(line) + "\n" for line in lines)
            print(f"what the sockets said: {path}")
        assert not problems, f"seed {seed}: {len(problems)} problems; {summary}\n" + "\n".join(problems[:40])
        assert tally["ok"] > 500, summary
    finally:
        if driver is not None:
            driver.close()
        for link in links:
            link.close()
        cluster.redis.proc.send_signal(signal.SIGCONT)
        for process in cluster.processes:
            print(f"server log: {process.log_path}")
        cluster.close()
