"""One module per dashboard page; each has `routes(dashboard) -> list[web.RouteDef]`."""
