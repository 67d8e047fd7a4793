"""The API reference: the OpenAPI document's descriptions, security and problems
(``operations.py``, ``parameters.py``, applied by ``document.py``) and the pages
that show it offline (``pages.py``: ``/``, ``/docs``, ``/redoc``)."""
