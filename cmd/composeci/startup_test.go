package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// initBudget is the most a package of composeci may allocate while it is
// initialised. Every package linked into the binary is initialised before
// main runs, for `composeci --help` as for `composeci listen`, so what a
// package does at init every command pays for (docs/performance.md,
// "Start-up"). Parsing anything is far above the budget — the embedded
// rules.toml is about 100 KB of allocations, a template or a regexp with a
// counted repeat tens of KB, even a regexp as small as ^a$ 2 KB — while a
// package's sentinel errors, small maps and sync.OnceValue wrappers stay
// well below it.
const initBudget = 4096

// TestNothingParsedAtInit runs composeci with GODEBUG=inittrace=1, which
// makes the runtime report every package's initialisation, and fails if a
// package of composeci allocates beyond initBudget: if the embedded rules,
// expected images, completeness rules, routing, a template or a regexp were
// parsed at init again. Allocations are counted, not time, so the test is
// exact.
func TestNothingParsedAtInit(t *testing.T) {
	cmd := exec.Command(os.Args[0], "--help")
	cmd.Env = append(os.Environ(), runAsMain+"=1", "GODEBUG=inittrace=1")
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = io.Discard, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("composeci --help: %v\n%s", err, stderr.String())
	}
	const module = "github.com/composeci/composeci/"
	trace := stderr.String()
	seen := 0
	sc := bufio.NewScanner(strings.NewReader(trace))
	for sc.Scan() {
		// init github.com/composeci/composeci/fedfind @12 ms, 0.03 ms clock, 1800 bytes, 30 allocs
		f := strings.Fields(sc.Text())
		if len(f) != 11 || f[0] != "init" || !strings.HasPrefix(f[1], module) {
			continue
		}
		if f[1] == module+"cmd/composeci" {
			continue // this test binary's own package, its tests' variables included
		}
		seen++
		n, err := strconv.Atoi(f[7])
		if err != nil {
			t.Fatalf("unreadable inittrace line %q", sc.Text())
		}
		if n > initBudget {
			t.Errorf("%s allocates %d bytes (%s allocs) at init, more than %d: something is parsed or compiled at start-up; build it on first use (docs/conventions.md)", f[1], n, f[9], initBudget)
		}
	}
	if seen == 0 {
		t.Fatalf("no init of composeci's packages reported; inittrace said:\n%s", trace)
	}
}

// buildProgram builds a throw-away main package of files, in a module of
// its own, into dir. go.sum is composeci's, so the program is built from
// the versions composeci uses; a go.mod a minimal version selection needs
// beyond those (the NATS server's own requirements) is fetched as any
// build would.
func buildProgram(b *testing.B, dir, name string, files map[string]string) string {
	b.Helper()
	src := filepath.Join(dir, name+"-src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		b.Fatal(err)
	}
	sum, err := os.ReadFile(filepath.Join("..", "..", "go.sum"))
	if err != nil {
		b.Fatal(err)
	}
	files["go.sum"] = string(sum)
	for f, text := range files {
		if err := os.WriteFile(filepath.Join(src, f), []byte(text), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	out := filepath.Join(dir, name)
	cmd := exec.Command("go", "build", "-o", out, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	if msg, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("go build %s: %v\n%s", name, err, msg)
	}
	return out
}

// startupBinaries are the programs BenchmarkStartup runs.
type startupBinaries struct {
	composeci string
	// hello is a hello-world program (fmt.Println), the yardstick of
	// issue 14.
	hello string
	// natsOnly links the NATS server and does nothing: the least a
	// binary that embeds it, as composeci listen does, costs at start-up.
	natsOnly string
	// stdlibFloor links only what a CLI of composeci's kind needs from Go's
	// standard library — HTTP with TLS, HTML and text templates, JSON and
	// XML — and does nothing: no CLI that talks to these services starts
	// faster.
	stdlibFloor string
	// cliPackages links composeci's packages that the one-shot commands
	// use (fedfind, koji, openqa, reports, stages, triage) and cobra —
	// neither the listener, the NATS server nor the web — and does
	// nothing: the floor of a CLI-only composeci binary, were the service
	// split out of it (docs/performance.md, "Start-up").
	cliPackages string
}

func buildStartupBinaries(b *testing.B) startupBinaries {
	b.Helper()
	dir := b.TempDir()
	bins := startupBinaries{composeci: filepath.Join(dir, "composeci")}
	cmd := exec.Command("go", "build", "-o", bins.composeci, ".")
	if msg, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("go build composeci: %v\n%s", err, msg)
	}
	bins.hello = buildProgram(b, dir, "hello", map[string]string{
		"go.mod":  "module hello\n\ngo 1.26\n",
		"main.go": "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"hello, world\") }\n",
	})
	bins.natsOnly = buildProgram(b, dir, "nats-only", map[string]string{
		"go.mod":  "module natsonly\n\ngo 1.26\n\nrequire github.com/nats-io/nats-server/v2 v2.15.2\n",
		"main.go": "package main\n\nimport _ \"github.com/nats-io/nats-server/v2/server\"\n\nfunc main() {}\n",
	})
	bins.stdlibFloor = buildProgram(b, dir, "stdlib-floor", map[string]string{
		"go.mod": "module stdlibfloor\n\ngo 1.26\n",
		"main.go": "package main\n\nimport (\n\t_ \"encoding/json\"\n\t_ \"encoding/xml\"\n\t_ \"html/template\"\n" +
			"\t_ \"net/http\"\n\t_ \"text/template\"\n)\n\nfunc main() {}\n",
	})
	repo, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		b.Fatal(err)
	}
	var imports strings.Builder
	for _, p := range []string{"fedfind", "fedfind/koji", "openqa", "reports", "stages", "triage"} {
		fmt.Fprintf(&imports, "\t_ %q\n", "github.com/composeci/composeci/"+p)
	}
	bins.cliPackages = buildProgram(b, dir, "cli-packages", map[string]string{
		"go.mod": "module clipackages\n\ngo 1.26\n\nrequire github.com/composeci/composeci v0.0.0\n\n" +
			"replace github.com/composeci/composeci => " + repo + "\n",
		"main.go": "package main\n\nimport (\n" + imports.String() + "\t_ \"github.com/spf13/cobra\"\n)\n\nfunc main() {}\n",
	})
	return bins
}

// startupCompare names an environment variable that may hold the path of
// another composeci binary — built from an earlier commit, or another way —
// for BenchmarkStartup to time as well ("-compared" cases).
const startupCompare = "COMPOSECI_STARTUP_COMPARE"

// BenchmarkStartup runs composeci as a process, each time right after a
// hello-world binary, and reports both wall times and their ratio (issue
// 14: --help within 2x of hello world, images of a compose on loopback
// within 3x). Running the two in turn keeps the ratio steady on a shared
// machine, where absolute times drift. nats-only is a program that links
// the NATS server composeci embeds and does nothing else: the floor of any
// binary that embeds it. stdlib-floor links net/http, the template
// packages, encoding/json and encoding/xml and does nothing: the floor of
// any CLI that talks HTTP and renders reports. cli-packages links the
// packages of composeci's one-shot commands and cobra, and does nothing:
// the floor of a composeci CLI without the service. Use -benchtime=200x.
func BenchmarkStartup(b *testing.B) {
	bins := buildStartupBinaries(b)
	tree := testTree()
	root := tree.Start()
	b.Cleanup(tree.Close)
	home := b.TempDir()
	run := func(b *testing.B, name string, args ...string) time.Duration {
		cmd := exec.Command(name, args...)
		cmd.Env = []string{"HOME=" + home} // no config, no COMPOSECI_* from the caller
		cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
		start := time.Now()
		if err := cmd.Run(); err != nil {
			b.Fatalf("%s %v: %v", name, args, err)
		}
		return time.Since(start)
	}
	type startupCase struct {
		name string
		bin  string
		args []string
	}
	help := []string{"--help"}
	images := []string{"images", "Fedora-Rawhide-20261120.n.0", "--compose-root", root}
	cases := []startupCase{
		{"help", bins.composeci, help},
		{"images-loopback", bins.composeci, images},
		{"nats-only", bins.natsOnly, nil},
		{"stdlib-floor", bins.stdlibFloor, nil},
		{"cli-packages", bins.cliPackages, nil},
	}
	if other := os.Getenv(startupCompare); other != "" {
		cases = append(cases, startupCase{"help-compared", other, help}, startupCase{"images-loopback-compared", other, images})
	}
	for _, bc := range cases {
		b.Run(bc.name, func(b *testing.B) {
			var base, own time.Duration
			for b.Loop() {
				base += run(b, bins.hello)
				own += run(b, bc.bin, bc.args...)
			}
			b.ReportMetric(float64(base.Microseconds())/1000/float64(b.N), "hello-ms/op")
			b.ReportMetric(float64(own.Microseconds())/1000/float64(b.N), "ms/op")
			b.ReportMetric(float64(own)/float64(base), "x-hello")
		})
	}
}
