"""SWE-smith-style synthesis on real packages: sdist → git repo → AST mutations → validated bugs."""
