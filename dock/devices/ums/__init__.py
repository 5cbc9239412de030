"""Mass-storage (UMS) body cameras: their volume, names, times and the driver the daemon uses."""
