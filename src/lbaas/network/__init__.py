"""Network drivers: where VIP subnets and ports come from (``[controller_worker]
network_driver``, after Octavia's setting of that name). See :mod:`lbaas.network.base`."""
