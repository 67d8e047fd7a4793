"""The portal's pages, one module a journey; each function is a ``web.page``."""
