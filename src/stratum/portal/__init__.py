"""The self-service portal: server-rendered pages at `/` over the API's own services.

Every page reads through the server's ObjectService with the caller's principal, so it shows
exactly what the API would answer that token; nothing here decides access. No build step:
Jinja2 templates and a few lines of vanilla JavaScript shipped in the package (docs/portal.md).
"""
