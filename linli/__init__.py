"""The `linli` command line: run services and operate an instance."""
import importlib

SERVICES = {
    "registry": "services.registry.service:RegistryService",
    "points": "services.points.service:PointsService",
    "consultation": "services.consultation.service:ConsultationService",
    "notification": "services.notification.service:NotificationService",
    "aggregator": "services.aggregator.service:AggregatorService",
    "gateway": "services.gateway.service:GatewayService",
}


def service_class(name):
    module, _, cls = SERVICES[name].partition(":")
    return getattr(importlib.import_module(module), cls)


def all_service_classes():
    return [service_class(name) for name in SERVICES]
