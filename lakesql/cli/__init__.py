"""The command line: a thin layer over lakesql.connect()."""
