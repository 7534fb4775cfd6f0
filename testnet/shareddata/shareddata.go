// Package shareddata finds the real public list files (OFAC, UN, BIS, FTM)
// that lie beside the repository, in ../shared/data from its root, on the
// machines this project is developed and tested on. Tests and benchmarks
// that use them skip where they are absent.
package shareddata

import (
	"os"
	"path/filepath"
)

// Dir is $WATCHFED_SHARED_DATA if set, else the first shared/data directory
// found walking up from the working directory (a test runs in its package's
// directory), else "" .
func Dir() string {
	if d := os.Getenv("WATCHFED_SHARED_DATA"); d != "" {
		return d
	}
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		if fi, err := os.Stat(filepath.Join(dir, "shared", "data")); err == nil && fi.IsDir() {
			return filepath.Join(dir, "shared", "data")
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}
