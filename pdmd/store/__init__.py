"""Where results live: array files written atomically, JSON documents, the database index."""
