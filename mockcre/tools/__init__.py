"""Tools over the journal, the contracts and the dialects that are not the server itself: the
data-quality report (``quality``, ``report_render``), the scenario recorder (``record``), the OpenAPI
export (``openapi``), and the client-side tools that drive a server (``strategies``, ``conformance``).
The faces (CLI, admin API, proxy) call them.
"""
