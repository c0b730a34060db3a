"""Provisioning: config.ini -> desired state -> actual state -> plan -> AWS calls.

The same operation serves the commands and the admin endpoint; a dry run prints the plan
it would apply.
"""
