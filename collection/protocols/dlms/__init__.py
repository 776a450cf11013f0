"""DLMS/COSEM client (asyncio I/O, gurux-dlms for request building)."""

from .client import DlmsClient
from .settings import DlmsSettings

__all__ = ["DlmsClient", "DlmsSettings"]
