"""Redis, as every part of homeapp that keeps something there reaches it: how a client is made
(one server, Sentinel or a Cluster), the key names with their hash tags, and the watch that
notices when Redis is unreachable."""
