"""Files type-checked by ``mypy --strict`` as a user's code (pyproject: ``[tool.mypy] files``) and run by pytest."""
