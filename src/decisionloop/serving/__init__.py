"""Serving: the transport-free predictor and the HTTP app over it."""
