"""Key-value caches behind one protocol: in process (``local``) or Redis (``aws``)."""
