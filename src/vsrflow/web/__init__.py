"""The web page for media ops (``vsrflow ui``): upload, choose, watch, compare, download.

An entry point like :mod:`vsrflow.cli` (Starlette + jinja2 templates + plain JavaScript, no
front-end build). Modules: :mod:`.app` (the application factory and routes), :mod:`.security`
(bind rules, token / basic auth, Host and CSRF checks), :mod:`.uploads` (browser file names as
data, limits, probe and estimate), :mod:`.jobs` (the job list from the same records the CLI
reads, per mode), :mod:`.frames` (frames extracted on demand for compare) and :mod:`.previews`
(a few seconds upscaled with candidate models).
"""
