"""The request pipeline: built-in features as steps that both workers call.

Each feature lives in one module and offers up to two faces over shared logic:

- an **ASGI face**, a middleware class ``Step(app, config)`` that is itself an ASGI app; the
  async worker runs the chain built by ``build_pipelines``;
- a **sync face** for the fused path: ``handle(request: RawRequest)`` that may answer a request
  outright (health, static files) with a ``RawResponse`` or ``FileResponse``, or a
  transformer ``(request, response) -> response`` (compression).

Only enabled steps are in the chain, so a feature that is off costs nothing per request.
"""
