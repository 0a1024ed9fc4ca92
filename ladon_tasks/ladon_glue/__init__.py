"""The only part of ladon_tasks that knows Ladon: decorator, endpoints, WSGI application."""
