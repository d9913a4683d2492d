package main

import "os"

func chmod(path string) error { return os.Chmod(path, 0o644) }
