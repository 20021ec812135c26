"""On a Redis Cluster, a batch of the outbox's appends in one round trip per master.

Every script call of an append touches one channel's keys, in one hash slot (history.Appender,
`one_slot`). The calls of a batch are grouped by the master of their slot, as the cluster client
knows it now, and each master gets its calls in one non-transactional pipeline of EVALSHAs; the
masters' pipelines go at once, a greenlet each. One master runs its calls in the order sent, so
each channel's messages keep the batch's order.

What a master may answer besides a result:

- NOSCRIPT: never after the SCRIPT LOAD at the head of each pipeline (history.Appender.pipeline:
  a master restarted, flushed, or a promoted replica has the script again before its calls);
  flushed between the two, a call's NOSCRIPT is that message's failure, as any ResponseError.
- a redirect (MOVED, ASK: the slot moved, or its master failed over) or the cluster's state
  (TRYAGAIN, CLUSTERDOWN): those calls are sent again one by one through the cluster client,
  which follows redirects and learns the slots again, after the pipelines and in the batch's
  order. A slot does not come back to a master within one pipeline, so a channel's calls after
  a redirected one were redirected too, and go again in their order.
- nothing (a master that cannot be reached): the cluster client learns the slots again, as its
  own calls do on a dead node, and the batch is unreachable: the outbox sends it again later,
  what got in meanwhile skipped by the marks. Each master's connection is opened before any
  pipeline goes (`writing` is called then): a master that cannot be reached at all proves that
  nothing of the batch was sent.

The results are history.Appender.append_all's: per message, its calls' results, a call's own
error (a ResponseError) as its result.
"""
import gevent
import redis
from redis.exceptions import AskError, ClusterDownError, RedisClusterException, TryAgainError

from homeapp.store import redis_client
from homeapp.store.redis_client import ClusterUnreachable

# a slot moving between masters (ASK: its keys are being migrated; TRYAGAIN: a call's keys are
# split between the two for now): no outage, the batch goes again later (RedisQueue._send)
MOVING = (AskError, TryAgainError)
# answers about the cluster, not about the call: the cluster client's own path handles them
_REDIRECTS = (*MOVING, ClusterDownError)


def append_all(appender, client, messages, command, writing=None):
    """history.Appender.append_all on the cluster client `client`. Raises RedisError when a
    master cannot be reached."""
    calls = []   # (message index, keys, args), in the batch's order
    counts = []
    for index, (text, channels, deadline) in enumerate(messages):
        made = appender.calls(text, channels, command, deadline)
        calls.extend((index, keys, args) for keys, args in made)
        counts.append(len(made))
    results = [None] * len(calls)
    by_node = _by_node(client, calls)
    for node in by_node:  # before anything is sent: a failure here proves that nothing was
        try:
            redis_client.connected(client.get_redis_connection(node))
        except (redis.ConnectionError, redis.TimeoutError):
            _learn_slots(client, node)
            raise
    if writing is not None:
        writing()
    if len(by_node) == 1:
        (node, positions), = by_node.items()
        answers = [_guarded(appender, client, node, [calls[p] for p in positions])]
    else:
        greenlets = [gevent.spawn(_guarded, appender, client, node, [calls[p] for p in positions])
                     for node, positions in by_node.items()]
        gevent.joinall(greenlets)
        answers = [greenlet.value for greenlet in greenlets]
    for (node, positions), answer in zip(by_node.items(), answers):
        if isinstance(answer, Exception):
            if isinstance(answer, (redis.ConnectionError, redis.TimeoutError)):
                _learn_slots(client, node)
            raise answer
        for position, result in zip(positions, answer):
            results[position] = result
    for position, result in enumerate(results):
        if isinstance(result, _REDIRECTS):
            _, keys, args = calls[position]
            results[position] = _one_by_one(appender, client, keys, args)
    flat = iter(results)
    return [[next(flat) for _ in range(count)] for count in counts]


def _by_node(client, calls):
    """{node: positions of its calls in `calls`}, the master of each call's slot as the client
    knows it now. Raises RedisError."""
    nodes = {}   # slot -> node
    by_node = {}
    try:
        for position, (_, keys, _) in enumerate(calls):
            slot = client.keyslot(keys[0])
            node = nodes.get(slot)
            if node is None:
                node = nodes[slot] = client.nodes_manager.get_node_from_slot(slot)
            by_node.setdefault(node, []).append(position)
    except RedisClusterException as exc:  # no master holds a slot
        raise ClusterUnreachable(str(exc)) from exc
    return by_node


def _guarded(appender, client, node, calls):
    """_on_node's results, or the error it raised (a greenlet's own would be printed)."""
    try:
        return _on_node(appender, client, node, calls)
    except Exception as exc:  # noqa: BLE001 - the caller raises it
        return exc


def _on_node(appender, client, node, calls):
    """The results of `calls` ((message index, keys, args)) in one pipeline on `node`, the script
    loaded at its head (history.Appender.pipeline). Raises RedisError."""
    pipe = appender.pipeline(client.get_redis_connection(node))
    for _, keys, args in calls:
        pipe.evalsha(appender.sha, len(keys), *keys, *args)
    return appender.execute(pipe)


def _one_by_one(appender, client, keys, args):
    """One call through the cluster client, which follows redirects: its result, or its own
    error (a ResponseError). Raises RedisError when the cluster cannot take it."""
    try:
        return appender.call(client, keys, args)
    except _REDIRECTS:  # still moving or down after the client's own retries: unreachable now
        raise
    except redis.ResponseError as exc:
        return exc


def _learn_slots(client, node):
    """Have the cluster client ask for the slots again, the unreachable node last (what its own
    calls do when a node fails), so that the next try reaches a promoted replica."""
    try:
        client.nodes_manager.initialize(last_failed_node_name=node.name)
    except (redis.RedisError, RedisClusterException):
        pass  # no node answers now: the next try's calls learn them
