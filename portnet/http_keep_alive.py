"""How long our HTTP servers keep an idle connection open: longer than any client keeps one.

A client that reuses a pooled connection at the very moment the server closes it for idleness gets
"Server disconnected without sending a response" for a request the server never saw. httpx keeps
idle connections 5 s by default and uvicorn closes them after 5 s: the two clocks race, and a
partner's callback, a partner call or a test's request fails now and then for nothing. The rule that
avoids the race is that the server always waits longer than its clients: our partner clients keep
connections 30 s (activities/http.py), the sandboxes' callback client and httpx's default 5 s, and
a cloud load balancer in front of the portal typically 60 s. So the portal (``make run``,
docker-compose.yml) and the sandboxes keep idle connections this long.
"""

from __future__ import annotations

SERVER_KEEP_ALIVE_SECONDS = 65
