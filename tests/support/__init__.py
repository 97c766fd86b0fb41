"""What the tests share: Redis servers, a cluster, the service as a process, the app in-process,
and the helpers that talk to them."""
