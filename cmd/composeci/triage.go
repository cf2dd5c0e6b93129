package main

import (
	"errors"
	"fmt"
	"os/user"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/composeci/composeci/stages"
	"github.com/composeci/composeci/triage"
)

// remoteFlags send a triage command to a running service's API instead.
type remoteFlags struct {
	server, tokenFile string
}

func (f *remoteFlags) add(fl *pflag.FlagSet) {
	fl.StringVar(&f.server, "server", "", "ask the composeci service at this URL (its --http) instead, e.g. http://127.0.0.1:8089")
	fl.StringVar(&f.tokenFile, "api-token-file", "", "with --server: file holding the service's API token")
}

// api is the client of a service's API, or nil without --server.
func (f *remoteFlags) api(a *app) (*apiClient, error) {
	if f.server == "" {
		return nil, nil
	}
	token, err := readToken(f.tokenFile)
	if err != nil {
		return nil, err
	}
	return newAPIClient(f.server, token)
}

// loginName is who a change made from the command line is by: --by, else
// the user's login name.
func loginName(a *app, by string) string {
	if by = strings.TrimSpace(by); by != "" {
		return by
	}
	if u := a.getenv("USER"); u != "" {
		return u
	}
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return "cli"
}

const knownLong = `The registry of known issues: a failure of an openQA test that matches an
entry (its test, and its flavor, arch and failed module where the entry
names them) is reported as a known issue, with the entry's reason and bug,
and is neither a new failure nor a reason for alarm — until the entry
expires, when the report lists it as expired instead.

Every change is recorded (who, when, what) in the registry's history.

The registry lives in the data directory (<data>/known-issues.json), or in
NATS for a deployment whose pipeline runs there ('listen --nats' records
where in --data, and these commands follow; --nats says it outright).
--server URL changes it through a running service's API instead (with
--api-token-file).`

func newKnownCmd(a *app) *cobra.Command {
	var sf storeFlags
	var rf remoteFlags
	cmd := &cobra.Command{
		Use:   "known",
		Short: "List, add and remove known issues (failures with a bug filed)",
		Long:  knownLong,
		Example: `  composeci known add --test install_default --arch aarch64 --reason "firmware hangs" --bug https://bugzilla.redhat.com/show_bug.cgi?id=1 --expires 30d
  composeci known list
  composeci known rm 1`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	// The subcommands share the flags of where the registry is.
	sf.add(cmd.PersistentFlags())
	rf.add(cmd.PersistentFlags())
	open := func(cmd *cobra.Command) (triage.Registry, func(), error) {
		api, err := rf.api(a)
		if err != nil {
			return nil, nil, err
		}
		if api != nil {
			return api.registry(), func() {}, nil
		}
		st, err := sf.stores(cmd.Context(), cmd, a)
		return st.Known, st.Close, err
	}

	list := &cobra.Command{
		Use:   "list",
		Short: "List the known issues (--json for scripts; --all with the history of changes)",
		Args:  cobra.NoArgs,
	}
	var all bool
	list.Flags().BoolVar(&all, "all", false, "print the history of changes too")
	list.RunE = func(cmd *cobra.Command, _ []string) error {
		reg, closeFn, err := open(cmd)
		if err != nil {
			return err
		}
		defer closeFn()
		entries, err := reg.List(cmd.Context())
		if err != nil {
			return err
		}
		var history []triage.Change
		if all {
			if history, err = reg.History(cmd.Context()); err != nil {
				return err
			}
		}
		now := time.Now()
		if a.g.json {
			type entry struct {
				triage.Entry
				Expired bool `json:"expired"`
			}
			out := struct {
				Entries []entry         `json:"known_issues"`
				History []triage.Change `json:"history,omitempty"`
			}{Entries: []entry{}, History: history}
			for _, e := range entries {
				out.Entries = append(out.Entries, entry{e, e.Expired(now)})
			}
			return a.printJSON(out)
		}
		if len(entries) == 0 {
			fmt.Fprintln(a.stdout, "No known issues.")
		} else {
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tTEST\tFLAVOR\tARCH\tMODULE\tEXPIRES\tREASON\tBUG")
			for _, e := range entries {
				exp := "never"
				if !e.Expires.IsZero() {
					exp = e.Expires.UTC().Format("2006-01-02 15:04")
					if e.Expired(now) {
						exp += " (expired)"
					}
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.ID, e.Test, orAny(e.Flavor), orAny(e.Arch), orAny(e.Module), exp, e.Reason, e.Bug)
			}
			tw.Flush()
		}
		if all {
			fmt.Fprintln(a.stdout, "\nHistory:")
			for _, c := range history {
				fmt.Fprintf(a.stdout, "  %s  %-6s #%d %s by %s\n", c.At.UTC().Format(time.RFC3339), c.Action, c.Entry.ID, c.Entry.Test, c.By)
			}
		}
		return nil
	}

	var e triage.Entry
	var expires, by string
	add := &cobra.Command{
		Use:   "add --test NAME --reason TEXT [--flavor F] [--arch A] [--module M] [--bug URL] [--expires WHEN]",
		Short: "Register a known issue",
		Long: `Register a known issue. --test and --reason are required; --flavor, --arch
and --module narrow what it matches (default: any); --bug is an http(s) URL;
--expires is a date (2026-12-31), an RFC 3339 time or a duration (30d, 720h):
after it the entry stops matching and reports list it as expired. Prints the
entry (its ID is what 'known rm' takes).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			when, err := triage.ParseExpiry(expires, time.Now())
			if err != nil {
				return withCode(exitError, fmt.Errorf("--expires: %w", err))
			}
			e.Expires = when
			if err := e.Validate(); err != nil {
				return withCode(exitError, err)
			}
			reg, closeFn, err := open(cmd)
			if err != nil {
				return err
			}
			defer closeFn()
			added, err := reg.Add(cmd.Context(), e, loginName(a, by))
			if err != nil {
				return err
			}
			if a.g.json {
				return a.printJSON(added)
			}
			fmt.Fprintf(a.stdout, "Known issue %d registered: %s", added.ID, added.Test)
			for _, part := range []string{added.Flavor, added.Arch, added.Module} {
				if part != "" {
					fmt.Fprintf(a.stdout, " %s", part)
				}
			}
			fmt.Fprintf(a.stdout, " — %s\n", added.Reason)
			return nil
		},
	}
	fl := add.Flags()
	fl.StringVar(&e.Test, "test", "", "the openQA test (TEST) it matches (required)")
	fl.StringVar(&e.Flavor, "flavor", "", "only failures of this flavor (FLAVOR, e.g. Server-dvd-iso)")
	fl.StringVar(&e.Arch, "arch", "", "only failures on this arch")
	fl.StringVar(&e.Module, "module", "", "only failures in this openQA test module")
	fl.StringVar(&e.Reason, "reason", "", "why it fails, for people reading the report (required)")
	fl.StringVar(&e.Bug, "bug", "", "the bug filed for it (http or https URL)")
	fl.StringVar(&expires, "expires", "", "when it stops matching: 2026-12-31, an RFC 3339 time, or 30d/720h from now (default never)")
	fl.StringVar(&by, "by", "", "who registers it (default your login name)")

	var rmBy string
	rm := &cobra.Command{
		Use:   "rm ID",
		Short: "Remove a known issue (kept in the history)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := strconv.ParseInt(args[0], 10, 64)
			if err != nil || id <= 0 {
				return withCode(exitError, fmt.Errorf("known issue %q: want its number (see 'composeci known list')", args[0]))
			}
			reg, closeFn, err := open(cmd)
			if err != nil {
				return err
			}
			defer closeFn()
			removed, err := reg.Remove(cmd.Context(), id, loginName(a, rmBy))
			if err != nil {
				return err
			}
			if a.g.json {
				return a.printJSON(removed)
			}
			fmt.Fprintf(a.stdout, "Known issue %d removed: %s — %s\n", removed.ID, removed.Test, removed.Reason)
			return nil
		},
	}
	rm.Flags().StringVar(&rmBy, "by", "", "who removes it (default your login name)")
	cmd.AddCommand(list, add, rm)
	return cmd
}

func orAny(s string) string {
	if s == "" {
		return "*"
	}
	return s
}

const rerunLong = `Re-run openQA jobs of a compose, with an audit trail: each re-run is
recorded (who, when, why, which job, its clone) before and after openQA is
asked, so a crash in between never restarts a job twice, and the compose's
report lists every re-run. Jobs already re-run (their clone pending or done)
and jobs not finished are skipped, with why: asking twice restarts nothing
twice.

Exactly one scope: --failed (every test whose newest job failed),
--new-failures (those failing for the first time), --job ID, --image FLAVOR
(every test of an image that did not pass) or --test NAME (every run of a
test that did not pass). --dry-run says what would be re-run.

With --server URL the running service does it through its API (with
--api-token-file) and checks and reports the compose again once the re-runs
end. Without, composeci asks openQA itself (with --openqa-key and a secret)
and records the trail under --data (or in NATS, as 'known' does); run
'composeci check COMPOSE' when the re-runs end.

Exit codes: 0 done (or nothing to re-run), 2 error.`

func newRerunCmd(a *app) *cobra.Command {
	var sf storeFlags
	var rf remoteFlags
	var oq openqaFlags
	var failed, newFailures, dryRun bool
	var jobID int64
	var image, test, reason, by string
	cmd := &cobra.Command{
		Use:   "rerun COMPOSE (--failed | --new-failures | --job ID | --image FLAVOR | --test NAME)",
		Short: "Re-run openQA jobs of a compose, with an audit trail",
		Long:  rerunLong,
		Example: `  composeci rerun Fedora-Rawhide-20261123.n.0 --new-failures --reason "the mirror was down"
  composeci rerun Fedora-Rawhide-20261123.n.0 --test install_default --dry-run
  composeci rerun Fedora-Rawhide-20261123.n.0 --job 4242 --server http://127.0.0.1:8089 --api-token-file token`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := triage.Request{Reason: reason, By: loginName(a, by), DryRun: dryRun}
			n := 0
			for _, s := range []struct {
				on    bool
				scope string
			}{{failed, triage.ScopeFailed}, {newFailures, triage.ScopeNewFailures}, {jobID != 0, triage.ScopeJob},
				{image != "", triage.ScopeImage}, {test != "", triage.ScopeTest}} {
				if s.on {
					n++
					req.Scope = s.scope
				}
			}
			if n != 1 {
				return withCode(exitError, errors.New("give exactly one of --failed, --new-failures, --job ID, --image FLAVOR, --test NAME"))
			}
			if jobID < 0 {
				return withCode(exitError, fmt.Errorf("--job %d: want a job number", jobID))
			}
			req.JobID, req.Image, req.Test = jobID, image, test
			res, err := rerun(cmd, a, &sf, &rf, &oq, args[0], req)
			if err != nil {
				return err
			}
			return printRerun(a, req, res, rf.server != "")
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&failed, "failed", false, "re-run every test whose newest job failed")
	fl.BoolVar(&newFailures, "new-failures", false, "re-run the new failures")
	fl.Int64Var(&jobID, "job", 0, "re-run this job")
	fl.StringVar(&image, "image", "", "re-run the tests of this image (its FLAVOR) that did not pass")
	fl.StringVar(&test, "test", "", "re-run every run of this test that did not pass")
	fl.StringVar(&reason, "reason", "", "why, for the audit trail")
	fl.StringVar(&by, "by", "", "who asks (default your login name)")
	fl.BoolVar(&dryRun, "dry-run", false, "say what would be re-run, restart nothing")
	oq.add(cmd)
	sf.add(fl)
	rf.add(fl)
	return cmd
}

func rerun(cmd *cobra.Command, a *app, sf *storeFlags, rf *remoteFlags, oq *openqaFlags, ref string, req triage.Request) (triage.Result, error) {
	ctx := cmd.Context()
	api, err := rf.api(a)
	if err != nil {
		return triage.Result{}, err
	}
	if api != nil {
		return api.rerun(ctx, ref, req)
	}
	ff, err := a.fedfindClient()
	if err != nil {
		return triage.Result{}, err
	}
	cm, err := ff.Resolve(ctx, ref)
	if err != nil {
		return triage.Result{}, err
	}
	client, err := oq.client(cmd, a)
	if err != nil {
		return triage.Result{}, err
	}
	if !req.DryRun && !client.HasCredentials() {
		return triage.Result{}, withCode(exitError, errors.New("re-running needs openQA credentials: --openqa-key and --openqa-secret-file (or OPENQA_API_KEY and OPENQA_API_SECRET)"))
	}
	st, err := sf.stores(ctx, cmd, a)
	if err != nil {
		return triage.Result{}, err
	}
	defer st.Close()
	check := stages.Check{Fedfind: ff, OpenQA: client, Known: st.Known, Ledger: st.Ledger, Archive: st.Reports, Logger: a.log}
	return check.Rerun(ctx, cm, req)
}

func printRerun(a *app, req triage.Request, res triage.Result, remote bool) error {
	if res.Restarted == nil {
		res.Restarted = []triage.Restarted{}
	}
	if res.Skipped == nil {
		res.Skipped = []triage.Skipped{}
	}
	if a.g.json {
		return a.printJSON(res)
	}
	verb := "Re-run"
	if req.DryRun {
		verb = "Would re-run"
	}
	if len(res.Restarted) == 0 {
		fmt.Fprintf(a.stdout, "Nothing to re-run (%s).\n", req)
	}
	for _, r := range res.Restarted {
		if req.DryRun {
			fmt.Fprintf(a.stdout, "%s job %d: %s %s %s\n", verb, r.JobID, r.Test, r.Flavor, r.Arch)
		} else {
			fmt.Fprintf(a.stdout, "%s job %d as %d: %s %s %s\n", verb, r.JobID, r.RerunJobID, r.Test, r.Flavor, r.Arch)
		}
	}
	for _, s := range res.Skipped {
		fmt.Fprintf(a.stdout, "Skipped job %d: %s\n", s.JobID, s.Reason)
	}
	if len(res.Restarted) > 0 && !req.DryRun {
		if remote {
			fmt.Fprintln(a.stderr, "The service checks and reports the compose again when the re-runs end.")
		} else {
			fmt.Fprintln(a.stderr, "Run 'composeci check' on the compose when the re-runs end.")
		}
	}
	return nil
}
