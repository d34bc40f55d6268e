"""/metrics (a bearer METRICS_TOKEN or an allowed network), /health/live and /health/ready: thin views."""

from __future__ import annotations

import hmac
import ipaddress
from functools import cache

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client.django import PrometheusDjangoView

from ops import health
from ops.metrics import build_registry


@cache
def _networks() -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(net.strip(), strict=False) for net in settings.METRICS_ALLOWED_NETWORKS)


@receiver(setting_changed)
def _reset_networks(*, setting: str, **kwargs) -> None:
    if setting == "METRICS_ALLOWED_NETWORKS":
        _networks.cache_clear()


def may_scrape(request: HttpRequest) -> bool:
    token = settings.METRICS_TOKEN
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if token and scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode()):
        return True
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(address in network for network in _networks())


class MetricsView(PrometheusDjangoView):
    registry = None

    def dispatch(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not may_scrape(request):
            return HttpResponseForbidden("metrics: a bearer METRICS_TOKEN or an address in METRICS_ALLOWED_NETWORKS\n")
        self.registry = _registry()
        response = super().dispatch(request, *args, **kwargs)
        response["Cache-Control"] = "no-store"
        return response


@cache
def _registry():
    return build_registry()


metrics_view = MetricsView.as_view()


@never_cache
@require_GET
def live_view(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def ready_view(request: HttpRequest) -> JsonResponse:
    results = health.run_checks()
    ok = all(r.ok for r in results)
    body = {
        "status": "ok" if ok else "failing",
        "failing": [r.name for r in results if not r.ok],
        "checks": {r.name: r.as_dict() for r in results},
    }
    return JsonResponse(body, status=200 if ok else 503)
