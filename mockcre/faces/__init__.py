"""The faces: HTTP and the command line, and nothing else. The server and its routes, the admin
API and the dashboard, CORS and TLS, the validating proxy, and every ``mockcre`` command. Each is
thin wiring over the pipeline and the tools below. (The test handle, the pytest plugin and the
Schemathesis hooks sit at the top of the package, at the import paths users write.)
"""
