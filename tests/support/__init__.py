"""What the test modules share, in one place: a test module never imports another test module.

- ``workers``: a worker on a test server (real activities, or some replaced by fakes), a payment
  input, starting an attempt, waiting for a status;
- ``fakes``: partners and mail as controlled fakes under the real activity names;
- ``ledger``: reading an invoice back;
- ``payloads``: the payloads of a recorded history;
- ``databases``: a throw-away database on the backend of the run, a free port;
- ``api``: the stack on real sockets and driving it over HTTP (start a payment per channel, pay at
  the sandboxes, poll a status);
- ``pages``: the portal's pages (log in, the CSRF token);
- ``partners``: the in-process portal with recording stand-ins for Temporal and the ledger.
"""
