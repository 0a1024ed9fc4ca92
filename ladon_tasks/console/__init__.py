"""The operations console under ``<application root>/_tasks/``: a JSON API for
administrators (see :doc:`operations`). It knows no Ladon."""
