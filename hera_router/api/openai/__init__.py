"""The OpenAI-compatible surface of the producer API: Files, Batches, Chat Completions, Models.

``install.install(app, state)`` adds the routes; docs/openai-api.md describes the behaviour and
the choices made where OpenAI's contract says nothing (storage, profiles, finalizing, expiry).
"""
