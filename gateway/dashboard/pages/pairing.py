"""`/pairing`: pending pairing codes to approve or reject, approved users to revoke.

Approve and revoke call the gateway's `Pairing` object, as `hermes pairing approve|revoke` does.
Rejecting drops the pending request (the code stops working; the user may ask again later).
"""

from __future__ import annotations

from aiohttp import web

from gateway.dashboard.core import BY, Dashboard
from gateway.pairing import Pairing, PairingError


def routes(d: Dashboard) -> list[web.RouteDef]:
    def pairing() -> Pairing:
        found = getattr(d.gateway, "pairing", None)
        if found is None:
            raise web.HTTPServiceUnavailable(text="pairing is not available in this gateway")
        return found

    async def index(request: web.Request) -> web.Response:
        p = pairing()
        return d.page(request, "pairing.html", active="/pairing", pending=await p.pending(),
                      grants=await p.grants())

    async def act(request: web.Request) -> web.StreamResponse:
        form = await d.form(request)
        p = pairing()
        action = request.match_info["action"]
        try:
            if action == "approve":
                grant = await p.approve(str(form.get("code", "")), approved_by=BY)
                message = f"approved {grant.platform}:{grant.user_id}" + \
                    (f" ({grant.display_name})" if grant.display_name else "")
            elif action == "reject":
                request = await p.reject(str(form.get("code", "")))
                who = f"{request.platform}:{request.user_id}"
                message = f"rejected the pairing request of {who}"
            else:
                removed = await p.revoke(str(form.get("user_id", "")),
                                         str(form.get("platform", "")) or None)
                message = "revoked " + ", ".join(f"{g.platform}:{g.user_id}" for g in removed)
        except PairingError as exc:
            return d.redirect("/pairing", str(exc), "error")
        return d.redirect("/pairing", message)

    return [web.get("/pairing", index), web.post(r"/pairing/{action:approve|reject|revoke}", act)]
