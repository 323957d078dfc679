"""Package resource facenb._resources.reported: this folder is shipped inside the facenb package (see setup.py)."""
