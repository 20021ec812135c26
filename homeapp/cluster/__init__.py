"""Several processes on one Redis: the message queue between them, the presence keeper, the
Redis key names, and the watch that notices when Redis is unreachable."""
