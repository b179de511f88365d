"""The skills hub: find, install, update, verify, uninstall and publish skills from outside.

Sources: a GitHub repository path (`owner/repo/path[@ref]`, REST API), a tap (a git repository
or an HTTP index), a well-known index (`https://host/.well-known/skills/index.json`) and a local
folder. Every fetched skill is staged in a temporary folder, checked (paths, links, sizes, a valid
SKILL.md), scanned by the guard, and only then moved into the library; `skills.lock` in the
library root records where each installed skill came from and the hash of its files.

    hub = Hub(library, HubSettings(...), taps=TapStore(path))
    result = await hub.install("myorg/skills/deploy@v2", force=False, confirm=ask)
"""

from skills.hub.errors import GuardRefused, HubError
from skills.hub.settings import HubSettings

__all__ = ["GuardRefused", "HubError", "HubSettings"]
