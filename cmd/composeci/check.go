package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/composeci/composeci/fedfind"
	"github.com/composeci/composeci/greenwave"
	"github.com/composeci/composeci/internal/httpclient"
	"github.com/composeci/composeci/listener/fedmsg"
	"github.com/composeci/composeci/reports"
	"github.com/composeci/composeci/stages"
)

const checkLong = `Run the compose checks and write the compose check report: missing expected
images, the image diff against the previous compose, and the openQA failures
classed new (the same test, flavor, arch and machine passed or was absent in
the previous compose), known (it failed there too, or it matches a registered
known issue: see 'composeci known') or fixed; new failures that composeci
re-ran (the pipeline's confirm stage, or 'composeci rerun') are confirmed when
they failed again and flaky when they passed; soft failures, incompletes and
skipped tests listed apart, and the re-run audit trail.

The report is archived as <data>/reports/<release>/<compose-id>/report.json,
report.txt and report.html (written atomically; <release>/index.json lists
them) and printed as text. Every version is kept (versions/<version>/); a
report that knows less than the archived one — made without openQA, or with
results still pending — is kept as a version but never replaces it. A
deployment on NATS (--nats, or what its listen recorded in --data) keeps its
reports there instead, for every host to read. --output FILE writes the JSON
report to FILE as well; --json prints the JSON report instead of the text (the
note of where it was archived then goes to stderr).

--greenwave URL adds check-compose's gating check to the reports of the
streams of --greenwave-streams (default rawhide): Greenwave is asked whether
the compose would pass the gating of --greenwave-context (default
` + greenwave.DefaultContext + `), and the report says PASSES or FAILS
with the required tests that failed or have no result, marking the failures
it names GATING; "no gating policy applies" when none does, and Greenwave
could not be asked when it failed — which never fails the check. Fedora's
Greenwave is ` + greenwave.FedoraURL + `.

--email mails it (text and HTML) to the recipients of --routing FILE (per
stream and subvariant, "all" and "error" lists, each told "always", on
"change" — the default — or on "error"; built in: nobody), or to --mail-to
addresses instead. --notify tells every channel of the routing: mail (with
--mail-from), its [[webhook]] entries (signed JSON), and Fedora Messaging
with --publish-amqp. Each version of a report (what it finds, not when it
was made) goes once to each recipient list and endpoint, recorded beside the
report: running check again without a change tells nobody twice; a changed
report is mailed as an update in the first mail's thread (--force-email
sends anyway). --smtp-tls starttls, the default, never sends in clear text:
a relay that offers no STARTTLS, as a local one may not, needs --smtp-tls
none (or opportunistic). A mail that fails is one line on stderr, naming the
server and why.

Exit codes: 0 nothing missing and no new failure, 1 an expected image is
missing or a test failed for the first time, 3 nothing wrong yet but openQA
results are pending (not clean: check again when they are in), 2 error (when
telling fails the report is still archived).`

type checkOpts struct {
	oq           openqaFlags
	gw           greenwaveFlags
	stores       storeFlags
	mail         mailFlags
	previous     string
	noOpenQA     bool
	output       string
	expectedFile string
	email        bool
	forceEmail   bool
	mailDryRun   bool
}

// greenwaveFlags are the flags of the gating check, for the commands that
// run the check stage (check, listen, worker).
type greenwaveFlags struct {
	url     string
	context string
	streams []string
}

func (o *greenwaveFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&o.url, "greenwave", "", "ask this Greenwave whether each compose would pass gating, and say so in the report (Fedora's: "+greenwave.FedoraURL+"; default: not asked)")
	fl.StringVar(&o.context, "greenwave-context", greenwave.DefaultContext, "the Greenwave decision context (gating point) of the gating check")
	fl.StringSliceVar(&o.streams, "greenwave-streams", []string{string(fedfind.StreamRawhide)}, "streams whose composes get the gating check (rawhide, branched, production, ...)")
}

// gating builds the check stage's gating check: nil without --greenwave.
func (o *greenwaveFlags) gating(a *app) (*stages.Gating, error) {
	if o.url == "" {
		return nil, nil
	}
	if o.context == "" {
		return nil, withCode(exitError, errors.New("--greenwave-context: empty (the default is "+greenwave.DefaultContext+")"))
	}
	var kinds []fedfind.StreamKind
	for _, s := range o.streams {
		k := fedfind.StreamKind(strings.TrimSpace(s))
		if !k.Known() {
			return nil, withCode(exitError, fmt.Errorf("--greenwave-streams: %q is not a stream kind (rawhide, branched, eln, cloud, container, iot, updates, updates-testing, production, other)", s))
		}
		kinds = append(kinds, k)
	}
	if len(kinds) == 0 {
		return nil, withCode(exitError, errors.New("--greenwave-streams: no stream: leave --greenwave out to ask about none"))
	}
	c, err := greenwave.New(greenwave.Options{BaseURL: o.url, Logger: a.log, HTTP: httpclient.Options{Timeout: a.g.remoteTimeout}})
	if err != nil {
		return nil, withCode(exitError, fmt.Errorf("--greenwave: %w", err))
	}
	return &stages.Gating{Greenwave: c, Context: o.context, Streams: kinds}, nil
}

// mailFlags are the flags of commands that mail reports and tell other
// channels of them.
type mailFlags struct {
	notify       bool
	publishURL   string
	publishCA    string
	publishCert  string
	publishKey   string
	publishExch  string
	publishTopic string
	publicURL    string
	routing      string
	mailTo       []string
	mailFrom     string
	smtp         string
	smtpTLS      string
	smtpUser     string
	smtpPassFile string
	smtpPassEnv  string
}

func (o *mailFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&o.routing, "routing", "", "TOML file routing reports to recipients by stream and subvariant")
	fl.StringArrayVar(&o.mailTo, "mail-to", nil, "send to this address instead of the routing (repeatable)")
	fl.StringVar(&o.mailFrom, "mail-from", "", "sender address")
	fl.StringVar(&o.smtp, "smtp", "localhost:25", "SMTP server HOST:PORT")
	fl.StringVar(&o.smtpTLS, "smtp-tls", reports.TLSStartTLS, "TLS policy: starttls, opportunistic or none (a local relay)")
	fl.StringVar(&o.smtpUser, "smtp-username", "", "SMTP AUTH user name")
	fl.StringVar(&o.smtpPassFile, "smtp-password-file", "", "file holding the SMTP password")
	fl.StringVar(&o.smtpPassEnv, "smtp-password-env", "", "environment variable holding the SMTP password")
	fl.BoolVar(&o.notify, "notify", false, "tell every channel of --routing: mail (with --mail-from), its [[webhook]] entries, and Fedora Messaging with --publish-amqp")
	fl.StringVar(&o.publishURL, "publish-amqp", "", "with --notify, publish each report version to this Fedora Messaging broker (amqps://...)")
	fl.StringVar(&o.publishCA, "publish-ca", "", "CA certificate of the --publish-amqp broker")
	fl.StringVar(&o.publishCert, "publish-cert", "", "client certificate for the --publish-amqp broker (SASL EXTERNAL)")
	fl.StringVar(&o.publishKey, "publish-key", "", "client key for --publish-cert")
	fl.StringVar(&o.publishExch, "publish-exchange", "amq.topic", "exchange --publish-amqp publishes to")
	fl.StringVar(&o.publishTopic, "publish-topic-prefix", fedmsg.DefaultTopicPrefix, "topic prefix of the messages (org.fedoraproject.stg on staging)")
	fl.StringVar(&o.publicURL, "public-url", "", "composeci's public web address, for the links in webhook and Fedora Messaging notifications")
}

// reporter builds the channels that tell of reports: mail with email (or
// with --notify and --mail-from), the routing's webhooks and Fedora
// Messaging with --notify. close releases the broker connection.
func (o *mailFlags) reporter(a *app, archive reports.Store, email bool) (rs stages.Report, closeFn func(), err error) {
	rs = stages.Report{Archive: archive, Logger: a.log, BaseURL: o.publicURL}
	closeFn = func() {}
	if o.publishURL != "" && !o.notify {
		return rs, closeFn, errors.New("--publish-amqp needs --notify")
	}
	if !email && !o.notify {
		return rs, closeFn, nil
	}
	if email || o.mailFrom != "" {
		if rs.Mailer, rs.Routing, err = o.setup(a); err != nil {
			return rs, closeFn, err
		}
	} else if rs.Routing, err = o.routingOnly(); err != nil {
		return rs, closeFn, err
	}
	if !o.notify {
		return rs, closeFn, nil
	}
	if len(rs.Routing.Webhooks) > 0 {
		rs.Webhooks = reports.NewWebhookSender(reports.WebhookOptions{Logger: a.log}, archive)
	}
	if o.publishURL != "" {
		p, err := fedmsg.NewPublisher(fedmsg.PublisherConfig{URL: o.publishURL, CACert: o.publishCA, Cert: o.publishCert, Key: o.publishKey,
			Exchange: o.publishExch, TopicPrefix: o.publishTopic}, archive, a.log)
		if err != nil {
			return rs, closeFn, fmt.Errorf("--publish-amqp: %w", err)
		}
		rs.Publisher, closeFn = p, func() { _ = p.Close() }
	}
	return rs, closeFn, nil
}

// routingOnly reads the routing without setting up mail.
func (o *mailFlags) routingOnly() (reports.Routing, error) {
	if len(o.mailTo) > 0 {
		return reports.Routing{}, errors.New("--mail-to needs --mail-from")
	}
	return reports.LoadRouting(o.routing)
}

func newCheckCmd(a *app) *cobra.Command {
	var o checkOpts
	cmd := &cobra.Command{
		Use:   "check COMPOSE",
		Short: "Check a compose and write (and mail) its compose check report",
		Long:  checkLong,
		Example: `  composeci check Fedora-Rawhide-20261123.n.0
  composeci check rawhide --json | jq .openqa.new_failures
  composeci check Fedora-Rawhide-20261123.n.0 --email --smtp mail.example.org:587 --mail-from qa@example.org --mail-to test@example.org
  composeci check rawhide --notify --routing routing.toml --publish-amqp amqps://composeci@rabbitmq.example.org/%2Fpubsub`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 2 && a.g.json {
				// The --json FILE and --json - of old releases.
				return fmt.Errorf("--json takes no value (it prints the JSON report); --output %s writes it to a file", args[1])
			}
			return cobra.ExactArgs(1)(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return runCheck(cmd, a, &o, args[0])
		},
	}
	o.oq.add(cmd)
	o.gw.add(cmd)
	fl := cmd.Flags()
	fl.StringVar(&o.previous, "previous", "", "compare with this compose instead of the previous successful one")
	fl.BoolVar(&o.noOpenQA, "no-openqa", false, "leave openQA out (images only)")
	fl.StringVar(&o.output, "output", "", "also write the JSON report to `FILE` (--json prints it instead of the text)")
	fl.StringVar(&o.expectedFile, "expected-file", "", "TOML file replacing the built-in expected-image lists")
	fl.BoolVar(&o.email, "email", false, "mail the report")
	fl.BoolVar(&o.forceEmail, "force-email", false, "with --email, mail even if this report already went to these recipients")
	fl.BoolVar(&o.mailDryRun, "mail-dry-run", false, "with --email, print the message instead of sending it")
	o.mail.add(cmd)
	o.stores.add(fl)
	return cmd
}

func runCheck(cmd *cobra.Command, a *app, o *checkOpts, ref string) error {
	ctx := cmd.Context()
	if o.output == "-" {
		return withCode(exitError, errors.New("--output names a file; --json prints the JSON report on stdout"))
	}
	exp, err := expectedImages(o.expectedFile)
	if err != nil {
		return err
	}
	gating, err := o.gw.gating(a)
	if err != nil {
		return err
	}
	// The reports, ledgers and known issues: under --data, or a
	// deployment's in NATS.
	st, err := o.stores.stores(ctx, cmd, a)
	if err != nil {
		return err
	}
	defer st.Close()
	rs, closeReporter, err := o.mail.reporter(a, st.Reports, o.email)
	if err != nil {
		return withCode(exitError, err)
	}
	defer closeReporter()
	ff, err := a.fedfindClient()
	if err != nil {
		return err
	}
	cm, err := ff.Resolve(ctx, ref)
	if err != nil {
		return err
	}
	var prev *fedfind.Compose
	if o.previous != "" {
		if prev, err = ff.Resolve(ctx, o.previous); err != nil {
			return fmt.Errorf("--previous: %w", err)
		}
		if prev.ID.SameSeries(cm.ID) && prev.ID.Compare(cm.ID) >= 0 {
			return withCode(exitError, fmt.Errorf("%w: --previous %s is not older than %s: new failures and the image diff compare with an earlier compose", fedfind.ErrInvalidInput, prev.ID, cm.ID))
		}
	}
	// The pipeline's check stage, run by hand.
	check := stages.Check{Fedfind: ff, Expected: exp, Archive: st.Reports, Gating: gating, Logger: a.log}
	if !o.noOpenQA {
		if check.OpenQA, err = o.oq.client(cmd, a); err != nil {
			return err
		}
		// Known issues and composeci's re-runs class the failures.
		check.Known, check.Ledger = st.Known, st.Ledger
	}
	r, err := check.Build(ctx, cm, prev)
	if err != nil {
		return err
	}
	written, err := st.Reports.Write(ctx, r)
	if err != nil {
		return err
	}
	if err := o.print(a, r, written, st.OnNATS); err != nil {
		return err
	}
	switch {
	case (o.email || o.mail.notify) && !written.Canonical:
		fmt.Fprintln(a.stderr, "Nobody told: this report knows less than the archived one.")
	case o.email || o.mail.notify:
		if err := o.send(ctx, a, rs, r); err != nil {
			return err
		}
	}
	switch {
	case r.Problem:
		return negative()
	case !r.Summary.ResultsComplete:
		// Not clean: not every result is in.
		return withCode(exitPending, nil)
	}
	return nil
}

// print writes the report as text, or as JSON with --json, and as JSON to
// --output; then where it was archived.
func (o *checkOpts) print(a *app, r reports.Report, w reports.Written, onNATS string) error {
	var js bytes.Buffer
	if a.g.json || o.output != "" {
		if err := reports.RenderJSON(&js, r); err != nil {
			return err
		}
	}
	if o.output != "" {
		if err := os.WriteFile(o.output, js.Bytes(), 0o644); err != nil {
			return fmt.Errorf("--output: %w", err)
		}
	}
	note := a.stdout
	if a.g.json {
		if _, err := a.stdout.Write(js.Bytes()); err != nil {
			return err
		}
		note = a.stderr
	} else if err := reports.RenderText(a.stdout, r); err != nil {
		return err
	}
	if !w.Canonical {
		fmt.Fprintf(note, "\nThis report is kept as version %s, but the archived report stays the one before: %s.\n", w.Version, w.Kept)
	}
	if onNATS != "" {
		fmt.Fprintf(note, "\nReport stored in the deployment's %s as %s, version %s; the dashboard serves it under /reports/%s/.\n", onNATS, w.Path, w.Version, w.Path)
		return nil
	}
	html := w.HTML
	if abs, err := filepath.Abs(html); err == nil {
		html = abs
	}
	fmt.Fprintf(note, "\nReport archived in %s (report.json, report.txt, report.html); open file://%s\n", w.Dir, html)
	return nil
}

// setup checks the mail flags before any work is done and builds the
// mailer and the routing.
func (o *mailFlags) setup(a *app) (*reports.Mailer, reports.Routing, error) {
	host, portStr, err := net.SplitHostPort(o.smtp)
	if err != nil {
		return nil, reports.Routing{}, fmt.Errorf("--smtp %q: want HOST:PORT: %w", o.smtp, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port <= 0 || port > 65535 {
		return nil, reports.Routing{}, fmt.Errorf("--smtp %q: bad port", o.smtp)
	}
	if o.mailFrom == "" {
		return nil, reports.Routing{}, errors.New("--email needs --mail-from")
	}
	m, err := reports.NewMailer(reports.MailConfig{Host: host, Port: port, TLS: o.smtpTLS, Username: o.smtpUser,
		PasswordFile: o.smtpPassFile, PasswordEnv: o.smtpPassEnv, From: o.mailFrom, Timeout: 30 * time.Second}, a.log)
	if err != nil {
		return nil, reports.Routing{}, err
	}
	var rt reports.Routing
	if len(o.mailTo) > 0 {
		rt, err = reports.OverrideRouting(o.mailTo)
	} else {
		rt, err = reports.LoadRouting(o.routing)
	}
	if err != nil {
		return nil, reports.Routing{}, err
	}
	return m, rt, nil
}

// send tells of the report as the pipeline's report stage does: each
// version once per recipient list and endpoint.
func (o *checkOpts) send(ctx context.Context, a *app, rs stages.Report, r reports.Report) error {
	if o.mailDryRun {
		if rs.Mailer == nil {
			return withCode(exitError, errors.New("--mail-dry-run needs mail: --email, or --notify with --mail-from"))
		}
		ch, err := rs.Change(ctx, r)
		if err != nil {
			return err
		}
		to := rs.Routing.RecipientsWhen(r, ch.Changed())
		if len(to) == 0 {
			fmt.Fprintf(a.stderr, "Not mailed: the routing names nobody for %s (see --routing, --mail-to).\n", r.ComposeID)
			return nil
		}
		return rs.Mailer.WriteMessage(a.stdout, r, to)
	}
	told, err := rs.Notify(ctx, r, o.forceEmail)
	m := told.Mail
	switch {
	case rs.Mailer == nil:
	case m.Sent && m.Update:
		fmt.Fprintf(a.stderr, "Mailed the updated report to %v (Message-ID %s, in reply to the first).\n", m.To, m.MessageID)
	case m.Sent:
		fmt.Fprintf(a.stderr, "Mailed to %v (Message-ID %s).\n", m.To, m.MessageID)
	case m.MessageID != "":
		fmt.Fprintf(a.stderr, "Already mailed to %v (Message-ID %s); not sent again (--force-email sends it anyway).\n", m.To, m.MessageID)
	case len(m.To) > 0:
		// Mailing failed: the error, returned below, says why.
	case !told.Change.Changed():
		fmt.Fprintf(a.stderr, "Not mailed: nothing changed since the previous compose, and the routing tells only of changes (when = \"change\").\n")
	default:
		fmt.Fprintf(a.stderr, "Not mailed: the routing names nobody for %s (see --routing, --mail-to).\n", r.ComposeID)
	}
	if told.Delivered+told.AlreadyDelivered > 0 {
		fmt.Fprintf(a.stderr, "Webhooks: %d told now, %d told of this version before.\n", told.Delivered, told.AlreadyDelivered)
	}
	if told.Published {
		fmt.Fprintf(a.stderr, "Published to Fedora Messaging.\n")
	} else if told.AlreadyPublished {
		fmt.Fprintf(a.stderr, "Already published to Fedora Messaging (this version).\n")
	}
	if err != nil {
		return fmt.Errorf("the report is archived, but telling of it failed: %w", err)
	}
	return nil
}
