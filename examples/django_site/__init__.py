"""A single-file Django site behind ``ConsentWSGIMiddleware``."""
