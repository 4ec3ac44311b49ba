"""The proofing studio: `bookcast studio` serves a page over a produced book (see service.py for
what it does, server.py for the web side, page/ for the page itself)."""
