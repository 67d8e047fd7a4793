"""The developer portal and admin console: server-rendered pages at ``/portal``.

Pages call the same services as the API, on the same units of work; the only
state of the portal's own is its sign-in sessions and the key its CSRF tokens are
signed with (repository.py). docs/portal.md shows the pages.
"""
