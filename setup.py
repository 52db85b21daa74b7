"""Build of the optional C accelerators; the rest is in pyproject.toml.

``beacon._speedups`` records page views, ``mypharm_consent._gatescan``
runs gating's searches over a page, ``mypharm_consent._responder`` is the
consent middleware's dispatch and send wrapper; ``src/include/asgi_sends.h``
is the awaitable the first and the last share. ``optional=True``: where no C compiler
is available the build goes on without them, and both run in pure Python
(the reference).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "beacon._speedups",
            sources=["src/beacon/_speedups.c"],
            include_dirs=["src/include"],
            depends=["src/include/asgi_sends.h"],
            optional=True,
        ),
        Extension(
            "mypharm_consent._gatescan",
            sources=["src/mypharm_consent/_gatescan.c"],
            optional=True,
        ),
        Extension(
            "mypharm_consent._responder",
            sources=["src/mypharm_consent/_responder.c"],
            include_dirs=["src/include"],
            depends=["src/include/asgi_sends.h"],
            optional=True,
        ),
    ]
)
