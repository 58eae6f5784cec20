"""Visitors' subscriptions: anyone follows the page, a provider or a model, and is told what happens."""
