"""The data-plane agent: what runs amphorae (HAProxy processes) for the control plane.

:class:`~lbaas.agent.base.AgentClient` is the boundary the haproxy provider
driver talks to; :class:`~lbaas.agent.local.LocalAgent` serves it in-process
(the standalone default). A remote agent on another host will serve the same
calls over HTTP later: arguments and results are frozen dataclasses that
serialise to JSON (``spec.to_json`` / ``from_json``, ``to_dict``).
"""
