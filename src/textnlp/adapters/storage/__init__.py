"""Blob storage: one interface, a local directory and S3, with the design's key layout."""

from textnlp.adapters.storage.base import BlobStorage
from textnlp.adapters.storage.factory import open_storage
from textnlp.adapters.storage.keys import Keys

__all__ = ["BlobStorage", "Keys", "open_storage"]
