package main

import (
	"runtime/debug"
	"strings"
)

// versionLine is what --version prints: the main module's version and the
// commit it was built from, as the Go toolchain recorded them in the binary
// (go build in a git checkout records vcs.revision, vcs.time and
// vcs.modified; go install of a tagged module records its version).
// "devel" stands for a version that is not known.
func versionLine(bi *debug.BuildInfo, ok bool) string {
	version, revision, at, modified := "devel", "", "", false
	if ok && bi != nil {
		if v := bi.Main.Version; v != "" && v != "(devel)" {
			version = v
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				revision = s.Value
			case "vcs.time":
				at = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	var b strings.Builder
	b.WriteString("composeci version " + version)
	if revision == "" {
		b.WriteString(", commit unknown")
		return b.String()
	}
	b.WriteString(", commit " + revision)
	if at != "" {
		b.WriteString(" (" + at + ")")
	}
	if modified {
		b.WriteString(", with uncommitted changes")
	}
	return b.String()
}
