"""The Argo CD side of the local phase: the REST API, login, and what is registered there."""
