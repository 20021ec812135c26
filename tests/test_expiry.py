from homeapp.identity.expiry import ExpiryWatch


def watch():
    started = []
    return ExpiryWatch(started.append, None), started


def test_sockets_come_due_once_in_deadline_order():
    expiry, started = watch()
    expiry.watch("b", 20.0)
    expiry.watch("a", 10.0)
    expiry.watch("c", 30.0)
    assert len(started) == 1  # one task for every socket
    assert expiry.due(9.9) == []
    assert expiry.due(20.0) == ["a", "b"]
    assert expiry.due(20.0) == [] and len(expiry) == 1


def test_a_moved_deadline_replaces_the_old_one():
    expiry, _ = watch()
    expiry.watch("a", 10.0)
    expiry.watch("a", 50.0)
    assert expiry.due(49.0) == []
    assert expiry.due(50.0) == ["a"]


def test_a_forgotten_socket_never_comes_due():
    expiry, _ = watch()
    expiry.watch("a", 10.0)
    expiry.forget("a")
    expiry.forget("never-watched")
    assert expiry.due(100.0) == [] and len(expiry) == 0


def test_leftovers_are_compacted_without_losing_deadlines():
    expiry, _ = watch()
    for round_ in range(100):
        for sid in ("a", "b", "c"):
            expiry.watch(sid, 1000.0 + round_)
    expiry.forget("c")
    assert len(expiry._heap) < 100
    assert expiry.due(1098.0) == [] and sorted(expiry.due(1099.0)) == ["a", "b"]


def test_the_task_sleeps_until_the_next_deadline_but_at_most_a_tick():
    expiry, _ = watch()
    assert expiry._delay(0.0) == 1.0
    expiry.watch("a", 100.3)
    assert abs(expiry._delay(100.0) - 0.3) < 1e-9
    assert expiry._delay(0.0) == 1.0
