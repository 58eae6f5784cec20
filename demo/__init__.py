"""Development tools: the AI-provider simulator and the demo registry that points at it."""
