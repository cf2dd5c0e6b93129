package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"sort"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/composeci/composeci/internal/httpclient"
)

// defaultComposeRoot is Fedora's compose tree.
const defaultComposeRoot = "https://kojipkgs.fedoraproject.org/compose"

// globals are the flags every command has.
type globals struct {
	config      string
	composeRoot string
	json        bool
	logLevel    string
	logFormat   string
	data        string
	// remoteTimeout bounds one attempt of a request to a remote service.
	remoteTimeout time.Duration
}

// app is what a command needs from the process: its streams, environment and
// global options. Tests build one with buffers and a fake environment.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	g              globals
	log            *slog.Logger
}

// run parses args, runs the command they name and returns the exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv}
	a.log = slog.New(slog.DiscardHandler)
	root := newRootCmd(a)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	code := codeOf(err)
	var es *exitStatus
	if err != nil && !(errors.As(err, &es) && es.Err == nil) {
		fmt.Fprintf(stderr, "composeci: %v\n", err)
	}
	return code
}

const rootLong = `composeci watches a distribution's composes, decides when each one is really
complete, tests it in openQA and reports on it.

Every flag can also be set in the TOML file named by --config (key = the flag's
name, or a table whose name prefixes it: [openqa] key = ... sets --openqa-key;
inside [koji], [openqa] and [smtp], url = or server = sets --koji, --openqa,
--smtp) and in the environment as COMPOSECI_<FLAG NAME> (e.g.
COMPOSECI_COMPOSE_ROOT). See docs/config.example.toml.
A flag given on the command line wins over the environment, which wins over the
file.

Durations are written 90s, 10m, 1h30m; none may be negative, except where a
command's help says what a negative one means (listen --poll-interval:
never poll; --koji-cache-ttl: no cache).

Exit codes: 0 yes/ok, 1 a negative answer (images missing, not done, new
failures), 2 a usage or input error or a failure to get an answer; commands
document any others.`

func newRootCmd(a *app) *cobra.Command {
	root := &cobra.Command{
		Use:           "composeci",
		Short:         "Find, watch, test and report on distribution composes",
		Long:          rootLong,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       versionLine(debug.ReadBuildInfo()),
	}
	root.SetVersionTemplate("{{.Version}}\n")
	root.Flags().Bool("version", false, "print the version and the commit composeci was built from")
	pf := root.PersistentFlags()
	pf.StringVar(&a.g.config, "config", "", "TOML config file (env COMPOSECI_CONFIG)")
	pf.StringVar(&a.g.composeRoot, "compose-root", defaultComposeRoot, "base URL of the compose tree (<root>/rawhide/<ID>/...)")
	pf.BoolVar(&a.g.json, "json", false, "print JSON for scripts instead of tables")
	pf.StringVar(&a.g.logLevel, "log-level", "warn", "log level: debug, info, warn, error")
	pf.StringVar(&a.g.logFormat, "log-format", "text", "log format: text or json")
	pf.StringVar(&a.g.data, "data", "./data", "directory for state and the report archive")
	pf.DurationVar(&a.g.remoteTimeout, "remote-timeout", 30*time.Second,
		"bound on one attempt of a request to the compose mirror, Koji or openQA (reads; retried with backoff after it)")

	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return withCode(exitError, err)
	})
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		if err := applyConfig(root, cmd, a.getenv); err != nil {
			return withCode(exitError, err)
		}
		if err := checkDurations(cmd.Flags()); err != nil {
			return withCode(exitError, err)
		}
		return a.setupLogging()
	}
	for _, newCmd := range commands() {
		root.AddCommand(newCmd(a))
	}
	return root
}

// commands lists the subcommands; each file adds its own constructor here.
// (A function, not a variable: the demo runs commands, which would make a
// variable's initialization refer to itself.)
func commands() []func(*app) *cobra.Command {
	return []func(*app) *cobra.Command{
		newImagesCmd,
		newExpectedCmd,
		newDiffCmd,
		newPkgdiffCmd,
		newPreviousCmd,
		newDoneCmd,
		newCheckCmd,
		newKnownCmd,
		newRerunCmd,
		newListenCmd,
		newWorkerCmd,
		newServeCmd,
		newScheduleCmd,
		newResultsCmd,
		newDemoCmd,
	}
}

func (a *app) setupLogging() error {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(a.g.logLevel)); err != nil {
		return withCode(exitError, fmt.Errorf("--log-level: %w", err))
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch a.g.logFormat {
	case "text":
		a.log = slog.New(slog.NewTextHandler(a.stderr, opts))
	case "json":
		a.log = slog.New(slog.NewJSONHandler(a.stderr, opts))
	default:
		return withCode(exitError, fmt.Errorf("--log-format: want text or json, got %q", a.g.logFormat))
	}
	return nil
}

// httpClient returns the retrying HTTP client for remote calls.
func (a *app) httpClient() *httpclient.Client {
	return httpclient.New(httpclient.Options{Logger: a.log, Timeout: a.g.remoteTimeout})
}

// printJSON writes v as indented JSON to stdout.
func (a *app) printJSON(v any) error {
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// applyConfig fills every flag of cmd that was not given on the command line
// from the environment (COMPOSECI_<NAME>) or, failing that, from the config
// file. Keys of the file that name no flag of any command are an error, so a
// typo does not pass silently.
func applyConfig(root, cmd *cobra.Command, getenv func(string) string) error {
	fs := cmd.Flags()
	cfgPath := ""
	if f := fs.Lookup("config"); f != nil {
		cfgPath = f.Value.String()
		if !f.Changed {
			if v := getenv("COMPOSECI_CONFIG"); v != "" {
				cfgPath = v
			}
		}
	}
	file := map[string][]string{}
	if cfgPath != "" {
		var err error
		if file, err = readConfig(cfgPath); err != nil {
			return err
		}
		known := allFlagNames(root)
		for k, v := range file {
			if known[k] {
				continue
			}
			// A flag that names a server and also heads a table of its own
			// (--koji and --koji-owner, --smtp and --smtp-tls) cannot be both
			// a key and a table in TOML: [koji] url = ... and [smtp]
			// server = ... set it from inside the table.
			for _, suffix := range []string{"-url", "-server"} {
				if base, ok := strings.CutSuffix(k, suffix); ok && known[base] {
					if _, dup := file[base]; dup {
						return fmt.Errorf("config %s: both %q and %q set --%s", cfgPath, base, k, base)
					}
					file[base] = v
					delete(file, k)
					k = base
					break
				}
			}
			if !known[k] {
				return fmt.Errorf("config %s: unknown key %q (no such flag)", cfgPath, k)
			}
		}
	}
	var errs []error
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Changed || f.Name == "config" || f.Name == "help" {
			return
		}
		env := "COMPOSECI_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		var vals []string
		var from string
		if v, ok := lookupEnv(getenv, env); ok {
			vals, from = []string{v}, "environment "+env
		} else if v, ok := file[f.Name]; ok {
			vals, from = v, "config "+cfgPath
		} else {
			return
		}
		for _, v := range vals {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s: --%s: %w", from, f.Name, err))
			}
		}
	})
	return errors.Join(errs...)
}

// negativeMeansSomething names the duration flags whose negative value has
// a meaning of its own, given in their help; every other duration flag
// refuses one.
func negativeMeansSomething(flag string) bool {
	switch flag {
	case "poll-interval", // listen: never poll the compose tree
		"koji-cache-ttl": // no cache of Koji's answers
		return true
	}
	return false
}

// checkDurations refuses a negative value, however given, for every
// duration flag of a command but those negativeMeansSomething names.
func checkDurations(fs *pflag.FlagSet) error {
	var errs []error
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Value.Type() != "duration" || negativeMeansSomething(f.Name) {
			return
		}
		if d, err := fs.GetDuration(f.Name); err == nil && d < 0 {
			errs = append(errs, fmt.Errorf("--%s %s: must not be negative", f.Name, d))
		}
	})
	return errors.Join(errs...)
}

func lookupEnv(getenv func(string) string, k string) (string, bool) {
	v := getenv(k)
	return v, v != ""
}

func allFlagNames(root *cobra.Command) map[string]bool {
	names := map[string]bool{}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		add := func(f *pflag.Flag) {
			if f.Name != "help" && f.Name != "version" { // what they do is not configuration
				names[f.Name] = true
			}
		}
		c.Flags().VisitAll(add)
		c.PersistentFlags().VisitAll(add)
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(root)
	return names
}

// readConfig reads a TOML file into flag name → values. Nested tables join
// their names with "-": [openqa] key = "x" is the flag openqa-key.
func readConfig(path string) (map[string][]string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	var doc map[string]any
	if err := toml.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	out := map[string][]string{}
	var flatten func(prefix string, m map[string]any) error
	flatten = func(prefix string, m map[string]any) error {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			name := k
			if prefix != "" {
				name = prefix + "-" + k
			}
			switch v := m[k].(type) {
			case map[string]any:
				if err := flatten(name, v); err != nil {
					return err
				}
			case []any:
				for _, e := range v {
					out[name] = append(out[name], fmt.Sprint(e))
				}
			default:
				out[name] = []string{fmt.Sprint(v)}
			}
		}
		return nil
	}
	if err := flatten("", doc); err != nil {
		return nil, err
	}
	return out, nil
}
