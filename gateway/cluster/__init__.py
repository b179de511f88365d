"""Several gateway processes on one PostgreSQL store acting as one: leases, duties, membership.

`lease` (who may run a duty, the fencing check), `duties` (what runs once, and the runner that
starts each only under its lease), `node` (this process as a member), `status` (what
`hermes status` and `/healthz` show), `wakeups` (LISTEN/NOTIFY: "look now" for a /stop or an
approval answer another process wrote).
"""
