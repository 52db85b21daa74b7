"""The Jinja2 environment shared by every template the package renders.

A site overrides any template by putting a file of the same name in one of
``ConsentConfig.template_dirs``: those directories are searched first, the
package's own ``templates/`` last.
"""

from __future__ import annotations

from functools import lru_cache

import jinja2

from mypharm_consent.config import ConsentConfig

__all__ = ["environment"]


@lru_cache(maxsize=32)
def _environment(template_dirs: tuple[str, ...]) -> jinja2.Environment:
    loaders: list[jinja2.BaseLoader] = [jinja2.FileSystemLoader(list(template_dirs))]
    loaders.append(jinja2.PackageLoader("mypharm_consent", "templates"))
    return jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )


def environment(config: ConsentConfig) -> jinja2.Environment:
    """The autoescaping environment for ``config``: site templates first, then ours.

    Environments are cached per set of template directories, so calling this
    on every request costs a dictionary lookup, and compiled templates are
    reused.
    """
    return _environment(tuple(str(path) for path in config.template_dirs))
