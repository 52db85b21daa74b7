"""Build of the optional C accelerator ``beacon._speedups``; the rest is in pyproject.toml.

``optional=True``: where no C compiler is available the build goes on
without it, and the page-view path runs in pure Python (the reference).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "beacon._speedups",
            sources=["src/beacon/_speedups.c"],
            optional=True,
        )
    ]
)
