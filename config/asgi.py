"""ASGI: HTTP to Django, WebSockets to the real-time consumers, lifespan to the real-time runtime.

Serve both with uvicorn (see the README's "Real-time"):
    uvicorn config.asgi:application --ws websockets-sansio --ws-per-message-deflate false ...
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_application = get_asgi_application()  # sets Django up before the consumers are imported

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.sessions import SessionMiddlewareStack  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402

from realtime.lifespan import lifespan  # noqa: E402
from realtime.routing import websocket_urlpatterns  # noqa: E402
from realtime.security import BearerAwareOriginValidator  # noqa: E402

if settings.DEBUG:  # as runserver does; in production the proxy serves STATIC_ROOT (collectstatic)
    django_application = ASGIStaticFilesHandler(django_application)

application = ProtocolTypeRouter(
    {
        "http": django_application,
        "websocket": BearerAwareOriginValidator(SessionMiddlewareStack(URLRouter(websocket_urlpatterns))),
        "lifespan": lifespan,
    }
)
