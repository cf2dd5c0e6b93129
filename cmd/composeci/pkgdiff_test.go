package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/composeci/composeci/fedfind"
)

// TestPkgdiffExamples runs every example of 'composeci pkgdiff --help' in the
// demo's world (what follows a pipe is for the shell): each finds changes.
func TestPkgdiffExamples(t *testing.T) {
	w, _ := mailWorld(t, t.TempDir())
	cmd := newPkgdiffCmd(&app{})
	n := 0
	for _, line := range strings.Split(cmd.Example, "\n") {
		line, _, _ = strings.Cut(line, "|")
		args := strings.Fields(line)
		if len(args) < 2 || args[0] != "composeci" {
			t.Fatalf("example %q is not a composeci command", line)
		}
		code, out, errOut := runCLI(t, nil, append(args[1:], w.flags()...)...)
		if code != exitNegative || out == "" {
			t.Errorf("%s: exit %d, want %d (changes)\n%s%s", line, code, exitNegative, out, errOut)
		}
		n++
	}
	if n < 3 {
		t.Errorf("only %d examples", n)
	}
}

// TestPrintPackageDiff covers what the test tree does not: a roll-up that
// hides the changes of its trees.
func TestPrintPackageDiff(t *testing.T) {
	mover := fedfind.NEVR{Name: "mover", EVR: fedfind.EVR{Version: "1.0", Release: "1.fc44"}}
	d := fedfind.PackageChanges{
		Old: "A", New: "B",
		SourceChanges: fedfind.SourceChanges{Unchanged: 1},
		Trees: []fedfind.TreeChanges{
			{Variant: "Everything", Arch: "x86_64", SourceChanges: fedfind.SourceChanges{Removed: []fedfind.PackageRef{{Name: "mover", NEVR: mover}}}},
			{Variant: "Server", Arch: "x86_64", SourceChanges: fedfind.SourceChanges{Added: []fedfind.PackageRef{{Name: "mover", NEVR: mover}}}},
		},
	}
	for _, tt := range []struct {
		trees bool
		want  string
	}{
		{false, "Source packages from A to B: 0 added, 0 removed, 0 upgraded, 0 downgraded, 1 unchanged.\n" +
			"2 variant and arch trees changed; the roll-up hides them, but they are listed with --trees.\n"},
		{true, "Source packages from A to B: 0 added, 0 removed, 0 upgraded, 0 downgraded, 1 unchanged.\n" +
			"\nEverything/x86_64: 0 added, 1 removed, 0 upgraded, 0 downgraded, 0 unchanged.\n  Removed (1):\n    - mover  1.0-1.fc44\n" +
			"\nServer/x86_64: 1 added, 0 removed, 0 upgraded, 0 downgraded, 0 unchanged.\n  Added (1):\n    + mover  1.0-1.fc44\n"},
	} {
		var b bytes.Buffer
		if err := printPackageDiff(&b, d, tt.trees); err != nil || b.String() != tt.want {
			t.Errorf("trees %v:\n%s\nwant\n%s", tt.trees, b.String(), tt.want)
		}
	}
}
