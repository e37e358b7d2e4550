"""The provisioning worker: settles PENDING_* load balancers through their driver.

:mod:`status` owns every provisioning_status transition; :mod:`graph` turns a
load balancer's rows into the frozen spec a driver receives;
:mod:`reconciler` runs the loop.
"""
