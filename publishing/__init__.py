"""The read side: the status snapshot, the edges that serve it as bytes, and the live push of every change."""
