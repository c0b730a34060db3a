"""The admin endpoint pypicloud serves once the plugin is included: HTTP only; the
work is the provisioning operation and the function's reconcile."""
