"""The faces users touch, each a thin layer over the engine: the HTTP app (API routes, admin API,
dashboard) and its server, the CLI commands, the validating proxy and its recorder, the conformance
runner, the data-quality report and the OpenAPI export. (The pytest plugin, the test handle, the
Hypothesis strategies and the Schemathesis hooks are faces too; they live at the top of the package,
at the import paths users write.)
"""
