"""The producer API (FastAPI): submit agent requests and batches, read their progress and results.

``app.create_app(settings)`` is the factory; ``service.SubmissionService`` and ``views.RequestViews``
hold the logic and import no FastAPI, so the CLI reuses them. Importing this package builds nothing.
"""
