"""LayerLab's IPython extension: ``%load_ext kernel_ext``.

Docker's verbs as magics, with Docker's flags (the ``layerlab`` command's parser) and output:

* line magics ``%dbuild %drun %dimages %dps %dcommit %ddiff %dtag %drmi %drm %dhistory %dinspect
  %dlogs %dstop %dpull %dpush %dsearch %dlogin %dlogout %dsave %dload %dregistry`` — ``%dimages -a``
  is ``docker images -a``;
* ``%docker <any command line>`` — ``%docker image ls``, ``%docker container ls -a``;
* cell magics ``%%dbuild [--context DIR] FLAGS`` (the cell is the Dockerfile) and ``%%drun FLAGS IMAGE``
  (the cell is fed to the container's shell, like typing into ``docker run -it … sh``);
* ``%dgraph [--live]`` (the layer graph) and ``%dexplore [IMAGE]`` (the layer explorer widget).

Every magic returns a result object (``.exit_code``, ``.text``; see :mod:`kernel_ext.display`);
``-o NAME`` (or ``--as NAME``) also stores it in ``NAME``. Settings: ``%config LayerLab``
(:mod:`kernel_ext.config`). The kernel's engine is ``layerlab_engine``.

>>> %load_ext kernel_ext                     # doctest: +SKIP
>>> %dimages                                 # doctest: +SKIP
REPOSITORY    TAG       IMAGE ID       CREATED        SIZE
busybox       latest    fecd66b996bd   6 months ago   1.98MB
"""
from __future__ import annotations

from typing import Any

_loaded: dict[str, Any] = {}


def load_ipython_extension(ipython: Any) -> None:
    """Called by ``%load_ext kernel_ext``."""
    from .magics import LayerLabMagics

    if "magics" in _loaded:  # loaded again (another shell, or after %unload_ext): start afresh
        _loaded.pop("magics").close()
    magics = LayerLabMagics(ipython)
    ipython.register_magics(magics)
    _loaded["magics"] = magics
    _loaded["engine"] = ipython.user_ns.get("layerlab_engine")


def unload_ipython_extension(ipython: Any) -> None:
    """Called by ``%unload_ext kernel_ext``."""
    magics = _loaded.pop("magics", None)
    _loaded.pop("engine", None)
    if magics is not None:
        magics.close()
