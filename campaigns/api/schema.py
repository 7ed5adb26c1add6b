"""OpenAPI document tweaks."""


def documented_paths(endpoints):
    """Show paths as documented (`/api/v1/campaigns`): the optional trailing slash is a courtesy."""
    return [(path.rstrip("/") or path, regex, method, callback) for path, regex, method, callback in endpoints]
