from homeapp.connections import Connections, TokenBucket


def test_bucket_allows_a_burst_then_refuses(monkeypatch):
    clock = [100.0]
    monkeypatch.setattr("homeapp.connections.time.monotonic", lambda: clock[0])
    bucket = TokenBucket(rate=2, burst=3)
    assert [bucket.allow() for _ in range(4)] == [True, True, True, False]
    clock[0] += 0.5  # one token back at 2 per second
    assert [bucket.allow(), bucket.allow()] == [True, False]
    clock[0] += 100
    assert sum(bucket.allow() for _ in range(10)) == 3  # never more than the burst


def test_rate_zero_means_unlimited_and_limits_are_per_socket():
    connections = Connections({"message": (0, 1), "typing": (1, 2)})
    a, b = connections.open("a", "1"), connections.open("b", "1")
    assert all(connections.allow(a, "message") for _ in range(1000))
    assert [connections.allow(a, "typing") for _ in range(3)] == [True, True, False]
    assert connections.allow(b, "typing")
    assert [c.sid for c in connections.of_user("1")] == ["a", "b"]
    assert connections.close("a") is a and connections.get("a") is None
