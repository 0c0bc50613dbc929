"""Dataset interchange: prompt/response imports, preference exports and dataset imports."""
