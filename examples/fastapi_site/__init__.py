"""A FastAPI site behind ``ConsentMiddleware``, reading consent through a dependency."""
