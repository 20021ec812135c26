"""Several processes on one Redis: how a Redis client is made (one server, or Sentinel), the
message queue between them, the presence keeper, the Redis key names, and the watch that
notices when Redis is unreachable."""
