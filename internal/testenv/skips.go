package testenv

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/composeci/composeci/internal/redact"
)

// SkipsFileEnv names the environment variable holding the file that
// records the tests skipped because a service was down (make test sets it).
const SkipsFileEnv = "COMPOSECI_TEST_SKIPS"

// Skip is one test skipped because a service was down: a line of the skips
// file.
type Skip struct {
	Service string `json:"service"` // "RabbitMQ"
	URL     string `json:"url"`     // where it was looked for, password redacted
	Start   string `json:"start"`   // the command that starts it
	Package string `json:"package"` // the test's package, from the module root: "listener/fedmsg"
	Test    string `json:"test"`
}

// unavailable fails the test under CI=true, where every service must be
// there; elsewhere it records the skip (SkipsFileEnv) and skips the test.
func unavailable(t testing.TB, s Skip, err error) {
	t.Helper()
	s.URL = redact.URL(s.URL)
	msg := fmt.Sprintf("%s is not reachable at %s (%v); start it with `%s`", s.Service, s.URL, err, s.Start)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + " (CI=true: the tests' services must be up)")
		return
	}
	if path := os.Getenv(SkipsFileEnv); path != "" {
		s.Package, s.Test = packageDir(), t.Name()
		if err := appendSkip(path, s); err != nil {
			t.Logf("recording the skip in %s: %v", path, err)
		}
	}
	t.Skip(msg)
}

// appendSkip appends s to the file as one line of JSON, in one write:
// the test binaries of several packages append to it at once.
func appendSkip(path string, s Skip) error {
	line, err := json.Marshal(s)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(append(line, '\n'))
	return errors.Join(err, f.Close())
}

// packageDir is the directory of the package under test (go test runs its
// binary there) relative to the module root: "listener/fedmsg".
func packageDir() string {
	wd, err := os.Getwd()
	if err != nil {
		return "?"
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			if rel, err := filepath.Rel(dir, wd); err == nil {
				return filepath.ToSlash(rel)
			}
			break
		} else if !errors.Is(err, fs.ErrNotExist) || filepath.Dir(dir) == dir {
			break
		}
	}
	return filepath.Base(wd)
}

// Summary reads a skips file and returns one line per service that was
// down: the tests it skipped, by package, and how to start it. Nothing for
// an empty file.
func Summary(r io.Reader) ([]string, error) {
	type down struct {
		Skip
		tests map[string][]string // package → tests
	}
	var services []*down
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var s Skip
		if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
			return nil, fmt.Errorf("a line of the skips file: %w", err)
		}
		i := slices.IndexFunc(services, func(d *down) bool { return d.Service == s.Service && d.URL == s.URL })
		if i < 0 {
			services = append(services, &down{Skip: s, tests: map[string][]string{}})
			i = len(services) - 1
		}
		if !slices.Contains(services[i].tests[s.Package], s.Test) {
			services[i].tests[s.Package] = append(services[i].tests[s.Package], s.Test)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	slices.SortFunc(services, func(a, b *down) int { return strings.Compare(a.Service+a.URL, b.Service+b.URL) })
	var lines []string
	for _, d := range services {
		n := 0
		var parts []string
		for _, pkg := range slices.Sorted(maps.Keys(d.tests)) {
			tests := slices.Sorted(slices.Values(d.tests[pkg]))
			n += len(tests)
			parts = append(parts, pkg+" "+strings.Join(tests, ", "))
		}
		noun := "tests"
		if n == 1 {
			noun = "test"
		}
		lines = append(lines, fmt.Sprintf("SKIPPED %d %s: %s is down (%s): %s. Start it with: %s",
			n, noun, d.Service, d.URL, strings.Join(parts, "; "), d.Start))
	}
	return lines, nil
}
