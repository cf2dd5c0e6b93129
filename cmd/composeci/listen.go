package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/composeci/composeci/fedfind"
	"github.com/composeci/composeci/listener"
	"github.com/composeci/composeci/reports"
	"github.com/composeci/composeci/web"
)

const listenLong = `Run the pipeline: find composes without anyone watching a clock, wait until
each is really complete, schedule its openQA tests, wait for the results,
check it and report on it — durably, so that a crash, a restart or a
duplicate message never loses a compose, schedules a job twice or sends a
report twice.

Events come from Fedora Messaging (--amqp URL, e.g. Fedora's public broker
` + listener.FedoraPublicBrokerURL + `
with its public client certificate), from a poller of the compose tree that
finds what no message announced (--poll-interval), and from people and
scripts (POST /api/v1/workflows/<compose ID> on --http). Each compose gets
one workflow: discover, await-complete, schedule, await-results, check,
report.

By default the workflow state and queues live in an embedded NATS JetStream
server, stored under <data>/nats: one process, nothing to install. With
--nats nats://host:4222 they live in an external NATS cluster instead, and
'composeci worker' processes on other hosts take stages from it too.

--http serves /healthz (503 when the pipeline is broken, the bus connection
is down, or no event came for --max-silence), the workflows as JSON under
/api/v1/ and the report archive under /reports/.

Exit codes: 0 stopped by a signal, 2 error.`

// serviceFlags are the flags of the long-running commands, listen and worker.
type serviceFlags struct {
	k            kojiFlags
	oq           openqaFlags
	mail         mailFlags
	noOpenQA     bool
	email        bool
	expectedFile string
	natsURL      string
	natsCreds    string
	natsListen   string
	workers      int
	watch        []string
	httpAddr     string
	completePoll time.Duration
	resultsPoll  time.Duration
	resultsGrace time.Duration
	ackWait      time.Duration
}

func (s *serviceFlags) add(cmd *cobra.Command, httpDefault string) {
	s.k.register(cmd)
	s.oq.add(cmd)
	s.mail.add(cmd)
	fl := cmd.Flags()
	fl.BoolVar(&s.noOpenQA, "no-openqa", false, "leave openQA out: no scheduling, reports without test results")
	fl.BoolVar(&s.email, "email", false, "mail each report once to its recipients (see --routing, --mail-to)")
	fl.StringVar(&s.expectedFile, "expected-file", "", "TOML file replacing the built-in expected-image lists")
	fl.StringVar(&s.natsURL, "nats", "", "external NATS server(s) with JetStream (default: an embedded server under <data>/nats)")
	fl.StringVar(&s.natsCreds, "nats-creds", "", "NATS credentials file for --nats")
	fl.IntVar(&s.workers, "workers", 2, "stages this process runs at once")
	fl.StringSliceVar(&s.watch, "watch", []string{"rawhide", "branched"}, "release streams to handle (rawhide, branched, eln, cloud:44, updates:44, ...)")
	fl.StringVar(&s.httpAddr, "http", httpDefault, "address of the health, API and report server (empty: none)")
	fl.DurationVar(&s.completePoll, "complete-poll", 2*time.Minute, "how often await-complete asks STATUS and Koji again")
	fl.DurationVar(&s.resultsPoll, "results-poll", time.Minute, "how often await-results asks openQA again")
	fl.DurationVar(&s.ackWait, "task-ack-wait", 2*time.Minute, "how soon a stage whose worker died (or a task lost at shutdown) is given to another worker")
	fl.DurationVar(&s.resultsGrace, "results-grace", 2*time.Minute, "how long every job must stay final before results count as complete (openQA re-runs incomplete jobs a moment later)")
}

// streams parses --watch.
func (s *serviceFlags) streams() ([]fedfind.StreamSpec, []fedfind.StreamKind, error) {
	var specs []fedfind.StreamSpec
	var kinds []fedfind.StreamKind
	for _, w := range s.watch {
		spec, ok, err := fedfind.ParseStreamSpec(strings.TrimSpace(w))
		if err != nil || !ok {
			return nil, nil, withCode(exitError, fmt.Errorf("--watch %q: not a stream (rawhide, branched, branched:44, eln, cloud:44, ...): %v", w, err))
		}
		specs = append(specs, spec)
		kinds = append(kinds, spec.Kind)
	}
	return specs, kinds, nil
}

// runner builds the stage runner from the flags.
func (s *serviceFlags) runner(ctx context.Context, cmd *cobra.Command, a *app, kinds []fedfind.StreamKind) (*listener.ComposeStages, error) {
	exp, err := expectedImages(s.expectedFile)
	if err != nil {
		return nil, err
	}
	dc, err := newDoneChecker(ctx, a, s.k)
	if err != nil {
		return nil, err
	}
	st := &listener.ComposeStages{Fedfind: dc.ff, Koji: dc.kc, Completeness: dc.rules, KojiOwner: dc.owner,
		Expected: exp, Streams: kinds, Logger: a.log,
		CompletePoll: s.completePoll, ResultsPoll: s.resultsPoll, ResultsGrace: s.resultsGrace}
	st.Archive = reports.DataArchive(a.g.data)
	st.Archive.Logger = a.log
	if !s.noOpenQA {
		if st.OpenQA, err = s.oq.client(cmd, a); err != nil {
			return nil, err
		}
	}
	if s.email {
		if st.Mailer, st.Routing, err = s.mail.setup(a); err != nil {
			return nil, withCode(exitError, err)
		}
	}
	return st, nil
}

func (s *serviceFlags) bus(a *app) listener.BusOptions {
	return listener.BusOptions{URL: s.natsURL, CredsFile: s.natsCreds, DataDir: a.g.data, Listen: s.natsListen, Name: "composeci", Logger: a.log}
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
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			specs, kinds, err := s.streams()
			if err != nil {
				return err
			}
			runner, err := s.runner(ctx, cmd, a, kinds)
			if err != nil {
				return err
			}
			var consumer *listener.Consumer
			if amqpURL != "" {
				cfg := listener.DefaultAMQPConfig()
				cfg.URL, cfg.Queue, cfg.App = amqpURL, amqpQueue, "composeci"
				if amqpExchange != "" {
					cfg.Exchange = amqpExchange
				}
				if amqpCA != "" || amqpCert != "" || amqpKey != "" {
					cfg.CACert, cfg.Cert, cfg.Key = amqpCA, amqpCert, amqpKey
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
				if consumer, err = listener.NewConsumer(cfg, a.log); err != nil {
					return withCode(exitError, fmt.Errorf("--amqp: %w", err))
				}
			}
			p, err := listener.New(ctx, listener.Options{Bus: s.bus(a), Runner: runner, Workers: s.workers, Dispatch: true, Logger: a.log, TaskAckWait: s.ackWait})
			if err != nil {
				return err
			}
			poller := &listener.Poller{Fedfind: runner.Fedfind, Streams: specs, Sink: p, Interval: pollInterval, Lookback: pollLookback, Logger: a.log}
			var checks []web.Check
			if consumer != nil {
				checks = append(checks, web.Check{Name: "amqp", Fn: func(context.Context) error {
					if !consumer.Connected() {
						return errors.New("not connected to " + redactURL(amqpURL))
					}
					return nil
				}})
			}
			return serve(ctx, a, p, s.httpAddr, maxSilence, checks, func(ctx context.Context, run func(string, func(context.Context) error)) {
				if pollInterval >= 0 {
					run("poller", poller.Run)
				}
				if consumer != nil {
					run("amqp consumer", func(ctx context.Context) error { return consumer.Run(ctx, p) })
				}
			})
		},
	}
	s.add(cmd, "127.0.0.1:8089")
	fl := cmd.Flags()
	fl.StringVar(&s.natsListen, "nats-listen", "", "let the embedded NATS server accept clients (workers on other hosts) on this address")
	fl.StringVar(&amqpURL, "amqp", "", "Fedora Messaging broker URL (default: no AMQP consumer, the poller alone finds composes)")
	fl.StringVar(&amqpCA, "amqp-ca", "", "CA certificate for an amqps:// broker (default Fedora's, /etc/fedora-messaging/cacert.pem)")
	fl.StringVar(&amqpCert, "amqp-cert", "", "client certificate for the broker (SASL EXTERNAL; default Fedora's public one)")
	fl.StringVar(&amqpKey, "amqp-key", "", "client key for --amqp-cert")
	fl.StringVar(&amqpQueue, "amqp-queue", "", "queue name (default a fresh UUID; a fixed UUID with --amqp-durable survives restarts of about an hour)")
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
		Short: "Run pipeline stages taken from an external NATS cluster",
		Long: `Run pipeline stages for a 'composeci listen' whose state lives in an external
NATS cluster (--nats): each worker process takes stage tasks from the shared
work queue, so the stages of many composes run on many hosts. A worker that
dies mid-stage loses nothing: another takes its task over, and every stage is
idempotent. Workers also turn stored events into workflows, so the pipeline
goes on while the listen process is down.

Exit codes: 0 stopped by a signal, 2 error.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if s.natsURL == "" {
				return withCode(exitError, errors.New("worker needs --nats: the state of an embedded server lives in the listen process"))
			}
			_, kinds, err := s.streams()
			if err != nil {
				return err
			}
			runner, err := s.runner(ctx, cmd, a, kinds)
			if err != nil {
				return err
			}
			p, err := listener.New(ctx, listener.Options{Bus: s.bus(a), Runner: runner, Workers: s.workers, Dispatch: true, Logger: a.log, TaskAckWait: s.ackWait})
			if err != nil {
				return err
			}
			return serve(ctx, a, p, s.httpAddr, 0, nil, nil)
		},
	}
	s.add(cmd, "")
	return cmd
}

// serve starts the pipeline, the HTTP server and the extra loops, and runs
// until ctx ends (a signal), then stops everything, the pipeline last.
func serve(ctx context.Context, a *app, p *listener.Pipeline, addr string, maxSilence time.Duration, checks []web.Check,
	extra func(context.Context, func(string, func(context.Context) error))) error {
	if err := p.Start(); err != nil {
		return err
	}
	loopCtx, stopLoops := context.WithCancel(ctx)
	done := make(chan struct{})
	running := 0
	run := func(name string, f func(context.Context) error) {
		running++
		go func() {
			defer func() { done <- struct{}{} }()
			if err := f(loopCtx); err != nil && loopCtx.Err() == nil {
				a.log.Error(name+" stopped", "err", err)
			}
		}()
	}
	if extra != nil {
		extra(loopCtx, run)
	}
	var srv *http.Server
	if addr != "" {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			stopLoops()
			return errors.Join(fmt.Errorf("--http: %w", err), p.Stop(context.Background()))
		}
		srv = &http.Server{Handler: web.NewHandler(web.Options{Workflows: p, ReportsDir: filepath.Join(a.g.data, "reports"),
			MaxSilence: maxSilence, Checks: checks, Logger: a.log}), ReadHeaderTimeout: 10 * time.Second}
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				a.log.Error("http server stopped", "err", err)
			}
		}()
		fmt.Fprintf(a.stderr, "composeci: serving health, API and reports on http://%s/\n", ln.Addr())
	}
	a.log.Info("pipeline running", "nats", p.Bus().ClientURL(), "embedded", p.Bus().Embedded())
	<-ctx.Done()
	stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stopLoops()
	for ; running > 0; running-- {
		<-done
	}
	if srv != nil {
		_ = srv.Shutdown(stopCtx)
	}
	return p.Stop(stopCtx)
}

// redactURL drops the user information of a URL for messages.
func redactURL(u string) string {
	if i := strings.Index(u, "@"); i >= 0 {
		if j := strings.Index(u, "://"); j >= 0 && j < i {
			return u[:j+3] + "…" + u[i:]
		}
	}
	return u
}
