"""What each scenario sends, to which servers, how long and how often: full, quick and smoke.

A scenario's `config` goes to bench/loadgen.js as it is (plus url, pid and target flavour).
Durations are seconds; a step's warm-up is never measured.
"""
from dataclasses import dataclass


@dataclass
class Scenario:
    name: str
    title: str
    what: str
    targets: list
    runs: int
    config: dict
    needs_redis: bool = False

    def description(self):
        """`what`, with this profile's numbers filled in."""
        return self.what.format(**self.config)


def closed(windows, warmup, duration):
    return [{"closed": w, "warmup_s": warmup, "duration_s": duration, "grace_s": 1} for w in windows]


def open_step(warmup, duration):
    return {"warmup_s": warmup, "duration_s": duration, "grace_s": 1}


def levels(*rates):
    return [{"rate": r} for r in rates]


SERVERS = ["homeapp", "node"]
WITH_ECHO = SERVERS + ["echo", "evented-echo"]


def full():
    return [
        Scenario(
            "relay", "Private-chat relay (rooms of 2)",
            "{rooms} rooms of 2 users, both in `room:<id>` and `user:<id>`; one `message` = 4 deliveries. "
            "Closed loop (N messages in flight per room) finds the maximum; an open-loop sweep at fixed "
            "offered rates, and at half of the run's own maximum, gives latency against load.",
            WITH_ECHO + ["echo-nodelay", "evented-echo-pool"], 3,
            {"scenario": "relay", "event": "message", "rooms": 100, "room_size": 2,
             "closed_steps": closed([8, 32], 1.5, 3),
             "open_levels": levels(500, 1000, 2000, 3000, 5000, 8000, 12000),
             "open_fraction_of_max": [0.5], "open_step": open_step(1, 2.5)}),
        Scenario(
            "fanout", "Group fan-out (rooms of 10)",
            "{rooms} rooms of 10 users, all joined; one `message` = 28 deliveries (10 messageRoom, "
            "9 messagePage, 9 messageResponseNotify). Closed loop.",
            WITH_ECHO, 3,
            {"scenario": "relay", "event": "message", "rooms": 20, "room_size": 10,
             "closed_steps": closed([1, 4], 1.5, 3)}),
        Scenario(
            "typing", "Typing storm (rooms of 2)",
            "{rooms} rooms of 2; `startTypingRoom`/`stopTypingRoom` alternating, each = 1 delivery to the "
            "other member. Closed loop.",
            SERVERS, 3,
            {"scenario": "relay", "event": "typing", "rooms": 100, "room_size": 2,
             "closed_steps": closed([2, 8], 1.5, 3)}),
        Scenario(
            "storm", "Connect storm with Redis presence",
            "New users arrive back to back ({concurrency} at a time): connect with `?userID=`, "
            "`addOnlineUser`, `joinRoom` (acknowledged); the {population} most recent stay, older ones disconnect (SREM). Presence "
            "in a private Redis; HomeApp also routes its emits through the Redis message queue, as it "
            "does whenever REDIS_URL is set.",
            [t + "+redis" for t in SERVERS], 3,
            {"scenario": "storm", "concurrency": 20, "population": 50,
             "steps": [{"warmup_s": 1.5, "duration_s": 3}]},
            needs_redis=True),
        Scenario(
            "idle", "Idle-connection capacity",
            "Sockets connect (`?userID=`, `joinRoom`) and stay idle; RSS of the server from "
            "/proc/<pid>/status at each level; an acknowledged event on the newest socket checks "
            "the process still answers. Capped by the machine's file-descriptor limit.",
            WITH_ECHO, 1,
            {"scenario": "idle", "levels": [1000, 2500, 5000, 10000, 15000], "settle_s": 2,
             "connect_concurrency": 100}),
    ]


def quick():
    scenarios = full()
    for s in scenarios:
        s.runs = 1
        for variant in ("echo-nodelay", "evented-echo-pool"):
            if variant in s.targets:
                s.targets.remove(variant)
    relay, fanout, typing, storm, idle = scenarios
    relay.config.update(closed_steps=closed([2, 8], 1, 2),
                        open_levels=levels(1000, 3000, 8000), open_step=open_step(0.5, 1.5))
    for s in (fanout, typing):
        s.config.update(closed_steps=closed([2], 1, 2))
    storm.config.update(steps=[{"warmup_s": 1, "duration_s": 2}])
    idle.config.update(levels=[1000, 5000], settle_s=1)
    return scenarios


def smoke():
    """Every scenario once, small and short, against the real server; the peers on the relay."""
    scenarios = full()
    relay, fanout, typing, storm, idle = scenarios
    for s in scenarios:
        s.runs = 1
        s.targets = ["homeapp"]
    relay.targets = ["homeapp", "node", "echo", "evented-echo"]
    relay.config.update(rooms=10, closed_steps=closed([1], 0.3, 1), open_levels=levels(100),
                        open_fraction_of_max=[0.5], open_step=open_step(0.3, 1))
    fanout.config.update(rooms=2, closed_steps=closed([1], 0.3, 1))
    typing.config.update(rooms=10, closed_steps=closed([2], 0.3, 1))
    storm.targets = ["homeapp+redis"]
    storm.config.update(concurrency=5, population=10, steps=[{"warmup_s": 0.3, "duration_s": 1}])
    idle.config.update(levels=[50, 200], settle_s=0.3, connect_concurrency=50)
    return scenarios


PROFILES = {"full": full, "quick": quick, "smoke": smoke}
