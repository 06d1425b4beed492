"""Isolated execution of untrusted patches and tests (bubblewrap, Docker API, Kubernetes) and SWE-bench grading."""
