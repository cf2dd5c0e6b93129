package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/composeci/composeci/fedfind"
	"github.com/composeci/composeci/listener"
	"github.com/composeci/composeci/listener/fedmsg"
	"github.com/composeci/composeci/listener/poller"
	"github.com/composeci/composeci/listener/workflow"
	"github.com/composeci/composeci/reports"
	"github.com/composeci/composeci/stages"
	"github.com/composeci/composeci/triage"
)

// Exit code of listen and worker when a part kept failing.
const exitPartFailed = 3

const listenLong = `Run the pipeline: find composes without anyone watching a clock, wait until
each is really complete, schedule its openQA tests, wait for the results,
check it and report on it — durably, so that a crash, a restart or a
duplicate message never loses a compose, schedules a job twice or sends a
report twice.

Events come from Fedora Messaging (--amqp URL, e.g. Fedora's public broker
` + fedmsg.FedoraPublicBrokerURL + `
with its public client certificate), from a poller of the compose tree that
finds what no message announced (--poll-interval), and from people and
scripts (POST /api/v1/workflows/<compose ID> on --http). Each compose gets
one workflow: discover, await-complete, schedule, await-results, confirm
(each new failure re-run once, at most --confirm-max per compose), check,
report (--email mails it; --notify tells every channel of --routing, and
Fedora Messaging with --publish-amqp — each report version once). With
--greenwave, the check stage also asks Greenwave whether each compose of
--greenwave-streams would pass gating (see 'composeci check --help').

By default the workflow state and queues live in an embedded NATS JetStream
server, stored under <data>/nats: one process, nothing to install. With
--nats nats://host:4222 they live in an external NATS cluster instead, and
'composeci worker' processes on other hosts take stages from it too. Give
every node of the cluster (--nats nats://a:4222,nats://b:4222,nats://c:4222)
and --nats-replicas 3 to listen, worker and serve alike: the streams and
buckets are kept on three nodes, and the loss of any one of them loses
nothing and stops the pipeline only while the cluster elects new leaders.

--http serves the dashboard (/, /streams/<release>, /composes/<ID>), the JSON
API under /api/v1/ (docs/api.md; writes need the token of --api-token-file),
Prometheus metrics on /metrics, /healthz (503 naming what is wrong: a part
down, the bus connection lost, no event for --max-silence) and the report
archive under /reports/.

Every part (the AMQP consumer, the poller, the dispatcher, each worker, the
HTTP server) is supervised: one that stops is restarted with backoff from
--restart-backoff; one that fails more than --max-restarts times in a row
ends the process with exit code 3, for systemd or Kubernetes to start it
afresh. On SIGTERM or Ctrl-C it stops taking work, hands the stages running
back to the queue and exits 0 within --shutdown-timeout.

With the embedded NATS server, listen owns --data: a second listen on the
same directory exits 2 at once, naming the process that holds it. One-shot
commands (check, schedule, ...) work beside it.

Exit codes: 0 stopped by a signal, 2 error (bad flags, --data in use, NATS
unreachable at start), 3 a part kept failing.`

// serviceFlags are the flags of the long-running commands, listen and worker.
type serviceFlags struct {
	k               kojiFlags
	oq              openqaFlags
	gw              greenwaveFlags
	sched           scheduleFlags
	mail            mailFlags
	noOpenQA        bool
	email           bool
	expectedFile    string
	natsURL         string
	natsCreds       string
	natsListen      string
	natsPrefix      string
	natsReplicas    replicasFlag
	workers         int
	watch           []string
	httpAddr        string
	completePoll    time.Duration
	completeTimeout time.Duration
	kojiWait        time.Duration
	resultsPoll     time.Duration
	resultsGrace    time.Duration
	resultsTimeout  time.Duration
	errorBackoff    time.Duration
	ackWait         time.Duration
	shutdownTimeout time.Duration
	restartBackoff  time.Duration
	maxRestarts     int
	apiTokenFile    string
	confirmMax      int
	closeReporter   func()
	st              stores
}

func (s *serviceFlags) add(cmd *cobra.Command, httpDefault, natsHelp string) {
	s.k.register(cmd)
	s.oq.add(cmd)
	s.gw.add(cmd)
	s.sched.add(cmd)
	s.mail.add(cmd)
	fl := cmd.Flags()
	fl.BoolVar(&s.noOpenQA, "no-openqa", false, "leave openQA out: no scheduling, reports without test results")
	fl.BoolVar(&s.email, "email", false, "mail each report once to its recipients (see --routing, --mail-to)")
	fl.StringVar(&s.expectedFile, "expected-file", "", "TOML file replacing the built-in expected-image lists")
	fl.StringVar(&s.natsURL, "nats", "", natsHelp)
	fl.StringVar(&s.natsCreds, "nats-creds", "", "NATS credentials file for --nats")
	fl.StringVar(&s.natsPrefix, "nats-prefix", workflow.DefaultPrefix, "names this deployment's streams, subjects and bucket, so several can share one NATS")
	s.natsReplicas.add(fl)
	fl.IntVar(&s.workers, "workers", 2, "stages this process runs at once")
	fl.StringSliceVar(&s.watch, "watch", []string{"rawhide", "branched"}, "release streams to handle (rawhide, branched, eln, cloud:44, updates:44, ...)")
	fl.StringVar(&s.httpAddr, "http", httpDefault, "address of the dashboard, API, metrics and report server (empty: none)")
	fl.StringVar(&s.apiTokenFile, "api-token-file", "", "file holding the bearer token API writes must carry (without it the API is read-only)")
	fl.DurationVar(&s.completePoll, "complete-poll", 2*time.Minute, "how often await-complete asks STATUS and Koji again")
	fl.DurationVar(&s.completeTimeout, "complete-timeout", 24*time.Hour, "how long a compose whose STATUS never becomes final (a Pungi that died, an ID of no compose) is waited for before its workflow fails (0: for ever)")
	fl.DurationVar(&s.kojiWait, "complete-koji-wait", 2*time.Hour, "how long Koji image tasks unfinished or not found may hold up a compose whose STATUS is final; then it goes on on STATUS alone (0: for ever)")
	fl.DurationVar(&s.resultsPoll, "results-poll", time.Minute, "how often await-results asks openQA again")
	fl.DurationVar(&s.resultsTimeout, "results-timeout", 8*time.Hour, "how long to wait for openQA's jobs before reporting with those still running listed as pending (0: for ever)")
	fl.DurationVar(&s.ackWait, "task-ack-wait", workflow.DefaultTaskAckWait, "how soon a stage whose worker died is given to another worker (with the embedded NATS, a restarted listen takes its own back at once)")
	fl.DurationVar(&s.errorBackoff, "error-backoff", 5*time.Second, "first wait before a stage that failed runs again (doubled per error in a row, at most 10 minutes)")
	fl.DurationVar(&s.resultsGrace, "results-grace", 2*time.Minute, "how long every job must stay final before results count as complete (openQA re-runs incomplete jobs a moment later)")
	fl.DurationVar(&s.shutdownTimeout, "shutdown-timeout", 30*time.Second, "on a signal, how long to wait for running stages to hand their tasks back")
	fl.DurationVar(&s.restartBackoff, "restart-backoff", time.Second, "first wait before restarting a part that stopped (doubled per failure in a row)")
	fl.IntVar(&s.maxRestarts, "max-restarts", 5, "failures in a row after which a part ends the process (exit 3)")
	fl.IntVar(&s.confirmMax, "confirm-max", stages.DefaultConfirmMax, "most new failures of a compose re-run once to confirm them before the report (0: no confirmation)")
}

// check refuses values no service can run with (negative durations are
// refused for every command: checkDurations).
func (s *serviceFlags) check() error {
	if s.workers < 0 || s.maxRestarts < 1 {
		return withCode(exitError, errors.New("--workers must be 0 or more and --max-restarts 1 or more"))
	}
	if s.confirmMax < 0 {
		return withCode(exitError, fmt.Errorf("--confirm-max %d: must not be negative (0 turns confirmation off)", s.confirmMax))
	}
	return s.natsReplicas.check(s.natsURL)
}

// urlHasPassword reports whether an AMQP URL carries a non-empty password
// (Fedora's public broker URL has a user and an empty one).
func urlHasPassword(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return false
	}
	p, ok := u.User.Password()
	return ok && p != ""
}

// foreverIfZero maps a timeout flag's 0 ("for ever") to the stages'
// negative one (their zero is the default).
func foreverIfZero(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

// streams parses --watch.
func (s *serviceFlags) streams() ([]fedfind.StreamSpec, []fedfind.StreamKind, error) {
	var specs []fedfind.StreamSpec
	var kinds []fedfind.StreamKind
	for _, w := range s.watch {
		spec, ok, err := fedfind.ParseStreamSpec(strings.TrimSpace(w))
		if err != nil {
			return nil, nil, withCode(exitError, fmt.Errorf("--watch: %w", err))
		}
		if !ok {
			return nil, nil, withCode(exitError, fmt.Errorf("--watch %q: not a stream (%s)", w, fedfind.StreamSpecs))
		}
		specs = append(specs, spec)
		kinds = append(kinds, spec.Kind)
	}
	return specs, kinds, nil
}

// stages builds the compose stages from the flags.
func (s *serviceFlags) stages(ctx context.Context, cmd *cobra.Command, a *app, kinds []fedfind.StreamKind) (*stages.Compose, error) {
	exp, err := expectedImages(s.expectedFile)
	if err != nil {
		return nil, err
	}
	gating, err := s.gw.gating(a)
	if err != nil {
		return nil, err
	}
	ac, err := awaitComplete(ctx, a, s.k)
	if err != nil {
		return nil, err
	}
	ac.Poll, ac.Timeout, ac.KojiWait = s.completePoll, foreverIfZero(s.completeTimeout), foreverIfZero(s.kojiWait)
	ff := ac.Fedfind
	// One host keeps the reports, ledgers and known issues in files under
	// --data, which the one-shot commands on this host share; a deployment
	// whose NATS other hosts reach keeps them in NATS, for every host.
	if at, ok, err := s.sharedAt(); err != nil {
		return nil, err
	} else if ok {
		// The embedded server is not up yet: its stores connect lazily.
		// On an external NATS the buckets are made now, while every node
		// is up — a bucket of N replicas cannot be made while fewer than
		// N nodes are — rather than at first use, which may come while
		// a node is down.
		if s.st, err = natsStores(ctx, a, at, s.natsURL == ""); err != nil {
			return nil, err
		}
		warnFileStoresLeftBehind(a)
	} else {
		s.st = fileStores(a)
	}
	c := &stages.Compose{
		Fedfind:       ff,
		Discover:      stages.Discover{Streams: kinds},
		AwaitComplete: ac,
		Schedule:      stages.Schedule{Fedfind: ff},
		AwaitResults:  stages.AwaitResults{Poll: s.resultsPoll, Grace: s.resultsGrace, Timeout: foreverIfZero(s.resultsTimeout)},
		Check: stages.Check{Fedfind: ff, Expected: exp, Archive: s.st.Reports, Known: s.st.Known, Ledger: s.st.Ledger,
			Gating: gating, Logger: a.log},
		Logger: a.log,
	}
	if !s.noOpenQA {
		oq, err := s.oq.client(cmd, a)
		if err != nil {
			return nil, err
		}
		opts, err := s.sched.options(a)
		if err != nil {
			return nil, err
		}
		c.Schedule.OpenQA, c.Schedule.Options = oq, opts
		c.AwaitResults.OpenQA, c.Check.OpenQA = oq, oq
		c.Confirm = stages.Confirm{Max: s.confirmMax, Wait: c.AwaitResults}
	}
	if c.Report, s.closeReporter, err = s.mail.reporter(a, s.st.Reports, s.email); err != nil {
		return nil, withCode(exitError, err)
	}
	return c, nil
}

// close releases what stages opened.
func (s *serviceFlags) close() {
	if s.closeReporter != nil {
		s.closeReporter()
	}
	if s.st.Close != nil {
		s.st.Close()
	}
}

// warnFileStoresLeftBehind says, once at start, when --data holds the
// files of a deployment that kept its stores there (reports, known
// issues) while this one keeps them in NATS: they are not read, so their
// reports vanish from the web and their known issues from triage. Moving
// them is the operator's call; the warning names what is left behind.
func warnFileStoresLeftBehind(a *app) {
	var left []string
	if entries, err := os.ReadDir(reports.DataArchive(a.g.data).Dir); err == nil && len(entries) > 0 {
		left = append(left, "reports/ ("+plural(len(entries), "entry", "entries")+")")
	}
	if _, err := os.Stat(filepath.Join(a.g.data, triage.RegistryFile)); err == nil {
		left = append(left, triage.RegistryFile)
	}
	if len(left) > 0 {
		fmt.Fprintf(a.stderr, "composeci: warning: %s holds %s kept in files by an earlier run; this deployment keeps its stores in NATS and does not read them\n",
			a.g.data, strings.Join(left, " and "))
	}
}

// sharedAt says where a deployment whose NATS other hosts reach (--nats, or
// --nats-listen) keeps its shared stores. A --nats-listen port of 0 is
// given a free port here, so that the embedded server and the stores agree
// on it.
func (s *serviceFlags) sharedAt() (storesOnNATS, bool, error) {
	at := storesOnNATS{URL: s.natsURL, CredsFile: s.natsCreds, Prefix: s.natsPrefix, replicas: s.natsReplicas.replicas()}
	if at.URL != "" {
		return at, true, nil
	}
	if s.natsListen == "" {
		return at, false, nil
	}
	host, port, err := net.SplitHostPort(s.natsListen)
	if err != nil {
		return at, false, withCode(exitError, fmt.Errorf("--nats-listen %q: want HOST:PORT: %w", s.natsListen, err))
	}
	if port == "0" {
		ln, err := net.Listen("tcp", s.natsListen)
		if err != nil {
			return at, false, withCode(exitError, fmt.Errorf("--nats-listen %s: %w", s.natsListen, err))
		}
		_, port, _ = net.SplitHostPort(ln.Addr().String())
		ln.Close()
		s.natsListen = net.JoinHostPort(host, port)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	at.URL = "nats://" + net.JoinHostPort(host, port)
	return at, true, nil
}

// markStores records in --data where the shared stores are (or that they
// are files there), for the one-shot commands on this host to follow.
func (s *serviceFlags) markStores(a *app) error {
	at, ok, err := s.sharedAt()
	if err != nil {
		return err
	}
	if !ok {
		at = storesOnNATS{}
	}
	if err := markStores(a.g.data, at); err != nil {
		return fmt.Errorf("recording where the reports and known issues are kept in %s: %w", a.g.data, err)
	}
	return nil
}

// options are the listener's options common to listen and worker.
func (s *serviceFlags) options(a *app, name string) (listener.Options, error) {
	token, err := readToken(s.apiTokenFile)
	if err != nil {
		return listener.Options{}, err
	}

	return listener.Options{
		Name:    name,
		DataDir: a.g.data,
		Workflow: workflow.Options{
			Bus:         workflow.BusOptions{URL: s.natsURL, CredsFile: s.natsCreds, Listen: s.natsListen, Name: name},
			Prefix:      s.natsPrefix,
			Replicas:    s.natsReplicas.replicas(),
			Workers:     s.workers,
			Dispatch:    true,
			TaskAckWait: s.ackWait,
			// 0 keeps the engine's default
			ErrorBackoff: s.errorBackoff,
		},
		Started:         func(context.Context) error { return s.markStores(a) },
		HTTPAddr:        s.httpAddr,
		Streams:         s.watch,
		APIToken:        token,
		ShutdownTimeout: s.shutdownTimeout,
		RestartBackoff:  s.restartBackoff,
		MaxFailures:     s.maxRestarts,
		Announce:        a.stderr,
		Logger:          a.log,
	}, nil
}

// durableQueueName is the durable AMQP queue of a deployment: a UUID (the
// shape Fedora's public broker demands) derived from the absolute data
// directory and the NATS prefix, so every start of the same listen uses —
// and never leaves behind — the same queue.
func durableQueueName(dataDir, prefix string) (string, error) {
	abs, err := filepath.Abs(dataDir)
	if err != nil {
		return "", withCode(exitError, fmt.Errorf("--data: %w", err))
	}
	sum := sha256.Sum256([]byte("composeci amqp queue\x00" + abs + "\x00" + prefix))
	b := sum[:16]
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]), nil
}

// readToken reads the API token from --api-token-file ("" without one).
func readToken(path string) (string, error) {
	if path == "" {
		return "", nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", withCode(exitError, fmt.Errorf("--api-token-file: %w", err))
	}
	token := strings.TrimSpace(string(b))
	if len(token) < 16 || strings.ContainsAny(token, " \t\r\n") {
		return "", withCode(exitError, fmt.Errorf("--api-token-file %s: want one token of at least 16 characters, no spaces", path))
	}
	return token, nil
}

// runListener runs the service until a signal; a part that kept failing is
// exit 3.
func runListener(ctx context.Context, o listener.Options) error {
	l, err := listener.New(o)
	if err != nil {
		return withCode(exitError, err)
	}
	err = l.Run(ctx)
	if errors.Is(err, listener.ErrPartFailed) {
		return withCode(exitPartFailed, err)
	}
	return err
}

func newListenCmd(a *app) *cobra.Command {
	var s serviceFlags
	var amqpURL, amqpCA, amqpCert, amqpKey, amqpQueue, amqpExchange string
	var amqpDurable bool
	var amqpBindings []string
	var pollInterval, pollLookback, maxSilence time.Duration
	cmd := &cobra.Command{
		Use:   "listen",
		Short: "Run the pipeline: find, await, test, check and report every compose",
		Long:  listenLong,
		Example: `  composeci listen --amqp ` + fedmsg.FedoraPublicBrokerURL + ` --email --routing routing.toml
  composeci listen --nats nats://nats1:4222,nats2:4222 --workers 4`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if err := s.check(); err != nil {
				return err
			}
			specs, kinds, err := s.streams()
			if err != nil {
				return err
			}
			c, err := s.stages(ctx, cmd, a, kinds)
			if err != nil {
				return err
			}
			defer s.close()
			o, err := s.options(a, "composeci listen")
			if err != nil {
				return err
			}
			o.Stages, o.MaxSilence = c, maxSilence
			if pollInterval >= 0 {
				o.Poller = &poller.Poller{Fedfind: c.Fedfind, Streams: specs, Interval: pollInterval, Lookback: pollLookback, Logger: a.log}
			}
			if amqpURL != "" {
				cfg := fedmsg.DefaultConfig()
				cfg.URL, cfg.Queue, cfg.App = amqpURL, amqpQueue, "composeci"
				if amqpExchange != "" {
					cfg.Exchange = amqpExchange
				}
				switch {
				case amqpCA != "" || amqpCert != "" || amqpKey != "":
					cfg.CACert, cfg.Cert, cfg.Key = amqpCA, amqpCert, amqpKey
				case urlHasPassword(amqpURL):
					// A user and password of its own: PLAIN over TLS,
					// the broker checked against the system's CAs —
					// not Fedora's certificate files and EXTERNAL.
					cfg.CACert, cfg.Cert, cfg.Key = "", "", ""
				}
				if amqpDurable && cfg.Queue == "" {
					// A fresh name at every start would leave a durable queue
					// behind each time, collecting messages nobody reads.
					if cfg.Queue, err = durableQueueName(a.g.data, s.natsPrefix); err != nil {
						return err
					}
					fmt.Fprintf(a.stderr, "composeci: --amqp-durable without --amqp-queue: using queue %s, derived from --data (give --amqp-queue to choose)\n", cfg.Queue)
				}
				if amqpDurable {
					cfg.Durable, cfg.AutoDelete, cfg.Exclusive = true, false, false
				}
				if len(amqpBindings) > 0 {
					cfg.Bindings = amqpBindings
				}
				cfg.Streams = nil
				for _, k := range kinds {
					cfg.Streams = append(cfg.Streams, string(k))
				}
				o.AMQP = &cfg
			}
			return runListener(ctx, o)
		},
	}
	s.add(cmd, "127.0.0.1:8089", "external NATS server(s) with JetStream, for workers on many hosts (default: an embedded server under <data>/nats)")
	fl := cmd.Flags()
	fl.StringVar(&s.natsListen, "nats-listen", "", "let the embedded NATS server accept clients (workers on other hosts) on this address")
	fl.StringVar(&amqpURL, "amqp", "", "Fedora Messaging broker URL (default: no AMQP consumer, the poller alone finds composes)")
	fl.StringVar(&amqpCA, "amqp-ca", "", "CA certificate for an amqps:// broker (default Fedora's, /etc/fedora-messaging/cacert.pem, with its client certificate; for a URL with a password, the system's CAs and no client certificate)")
	fl.StringVar(&amqpCert, "amqp-cert", "", "client certificate for the broker (SASL EXTERNAL; default Fedora's public one)")
	fl.StringVar(&amqpKey, "amqp-key", "", "client key for --amqp-cert")
	fl.StringVar(&amqpQueue, "amqp-queue", "", "queue name (default a fresh UUID; with --amqp-durable, a UUID derived from --data and --nats-prefix, the same at every start; Fedora's broker keeps a durable queue about an hour after its consumer leaves)")
	fl.StringVar(&amqpExchange, "amqp-exchange", "amq.topic", "exchange the queue is bound to")
	fl.BoolVar(&amqpDurable, "amqp-durable", false, "declare a durable, shared queue that keeps messages while composeci is down")
	fl.StringArrayVar(&amqpBindings, "amqp-binding", nil, "routing key to bind (repeatable; default the Pungi status and openQA job.done topics)")
	fl.DurationVar(&pollInterval, "poll-interval", 10*time.Minute, "how often to look for composes in the tree (negative: never)")
	fl.DurationVar(&pollLookback, "poll-lookback", 48*time.Hour, "how old a compose found by polling may be")
	fl.DurationVar(&maxSilence, "max-silence", 26*time.Hour, "/healthz fails when no event came for this long (0: never)")
	return cmd
}

func newWorkerCmd(a *app) *cobra.Command {
	var s serviceFlags
	cmd := &cobra.Command{
		Use:   "worker",
		Short: "Run pipeline stages taken from an external NATS cluster (--nats, required)",
		Long: `Run pipeline stages for a 'composeci listen' whose state lives in NATS: each
worker process takes stage tasks from the shared work queue, so the stages of
many composes run on many hosts. --nats is required: the NATS cluster (or the
embedded server of a listen started with --nats-listen) that listen uses. A
worker that dies mid-stage loses nothing: another takes its task over, and
every stage is idempotent. Workers also turn stored events into workflows, so
the pipeline goes on while the listen process is down.

Give it the same stage flags as listen (--koji, --openqa..., --greenwave...,
--email and the mail flags, --watch); --workers sets how many stages it runs at once.

Exit codes: 0 stopped by a signal, 2 error, 3 a part kept failing.`,
		Example: `  composeci worker --nats nats://nats1:4222 --workers 4 --openqa https://openqa.example.org --openqa-key KEY --openqa-secret-file secret`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if s.natsURL == "" {
				return withCode(exitError, errors.New("worker needs --nats: the NATS server or cluster that 'composeci listen' uses (with listen's embedded server, start listen with --nats-listen)"))
			}
			if err := s.check(); err != nil {
				return err
			}
			_, kinds, err := s.streams()
			if err != nil {
				return err
			}
			c, err := s.stages(ctx, cmd, a, kinds)
			if err != nil {
				return err
			}
			defer s.close()
			o, err := s.options(a, "composeci worker")
			if err != nil {
				return err
			}
			o.Stages = c
			return runListener(ctx, o)
		},
	}
	s.add(cmd, "", "NATS server(s) with JetStream that listen uses, e.g. nats://nats1:4222 (required)")
	return cmd
}
