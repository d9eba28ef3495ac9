"""Checks that a TCP port is free before a service binds it, to fail with one clear line."""

from __future__ import annotations

import socket

from panoptic.core.errors import PanopticError


class PortInUse(PanopticError):
    """A port the suite needs is taken; the message names it and the variable that moves it."""


def check_port_free(host: str, port: int, what: str, variable: str) -> None:
    """Raises `PortInUse` when nothing could listen on `host:port`."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            raise PortInUse(
                f"port {port} on {host} ({what}) is already in use"
                f"{' ' + error.strerror.lower() if error.strerror and error.errno != 98 else ''}; "
                f"stop the program using it or set {variable} to a free port"
            ) from None
