package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/composeci/composeci/listener"
	"github.com/composeci/composeci/listener/workflow"
	"github.com/composeci/composeci/openqa"
	"github.com/composeci/composeci/stages"
)

const serveLong = `Serve the dashboard, the JSON API and the Prometheus metrics of a pipeline
whose state lives in NATS (--nats, required), without running any of it: a
second host for people and scripts to read, while 'composeci listen' and
'composeci worker' do the work elsewhere.

It serves / (every watched stream with its latest compose and the composes in
flight), /streams/<release>, /composes/<ID>, /api/v1/ (docs/api.md), /metrics
and /healthz, and the report archive under --data (reports/<release>/<ID>/).
GET /api/v1/composes/<ID>/done answers from the pipeline once it holds a final
verdict and asks STATUS and Koji otherwise (--koji, --compose-root). Writes
(triggering a compose, retrying a workflow) need the token of --api-token-file;
without one the API is read-only.

Exit codes: 0 stopped by a signal, 2 error, 3 a part kept failing.`

func newServeCmd(a *app) *cobra.Command {
	var k kojiFlags
	var natsURL, natsCreds, natsPrefix, httpAddr, tokenFile, openqaURL string
	var watch []string
	var replicas replicasFlag
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the dashboard, API and metrics of a pipeline from its NATS (a read-only host)",
		Long:  serveLong,
		Example: `  composeci serve --nats nats://nats1:4222 --http 0.0.0.0:8089 --data /srv/composeci
  curl http://localhost:8089/api/v1/composes/Fedora-Rawhide-20261123.n.0/done`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if natsURL == "" {
				return withCode(exitError, errors.New("serve needs --nats: the NATS server or cluster that 'composeci listen' uses (with listen's embedded server, start listen with --nats-listen)"))
			}
			if httpAddr == "" {
				return withCode(exitError, errors.New("serve needs --http: the address to serve on"))
			}
			if err := replicas.check(natsURL); err != nil {
				return err
			}
			token, err := readToken(tokenFile)
			if err != nil {
				return err
			}
			ac, err := awaitComplete(ctx, a, k)
			if err != nil {
				return err
			}
			// Stages that never run here: they answer "is it done?" and
			// name openQA pages.
			c := &stages.Compose{Fedfind: ac.Fedfind, AwaitComplete: ac}
			// The deployment's reports and known issues, as every host
			// sees them.
			st, err := natsStores(ctx, a, storesOnNATS{URL: natsURL, CredsFile: natsCreds, Prefix: natsPrefix, replicas: replicas.replicas()}, false)
			if err != nil {
				return err
			}
			defer st.Close()
			c.Check.Archive, c.Check.Known = st.Reports, st.Known
			if openqaURL != "" {
				if c.Schedule.OpenQA, err = openqa.New(openqa.Options{BaseURL: openqaURL, Logger: a.log}); err != nil {
					return withCode(exitError, fmt.Errorf("--openqa: %w", err))
				}
			}
			return runListener(ctx, listener.Options{
				Name:    "composeci serve",
				DataDir: a.g.data,
				Workflow: workflow.Options{Bus: workflow.BusOptions{URL: natsURL, CredsFile: natsCreds, Name: "composeci serve"},
					Prefix: natsPrefix, ReadOnly: true},
				Stages:   c,
				HTTPAddr: httpAddr,
				Streams:  watch,
				APIToken: token,
				Announce: a.stderr,
				Logger:   a.log,
			})
		},
	}
	k.register(cmd)
	fl := cmd.Flags()
	fl.StringVar(&natsURL, "nats", "", "NATS server(s) with JetStream that listen uses, e.g. nats://nats1:4222 (required)")
	fl.StringVar(&natsCreds, "nats-creds", "", "NATS credentials file for --nats")
	fl.StringVar(&natsPrefix, "nats-prefix", workflow.DefaultPrefix, "the prefix of the deployment to serve (listen's --nats-prefix)")
	replicas.add(fl)
	fl.StringVar(&httpAddr, "http", "127.0.0.1:8089", "address to serve the dashboard, API and metrics on")
	fl.StringVar(&tokenFile, "api-token-file", "", "file holding the bearer token API writes must carry (without it the API is read-only)")
	fl.StringVar(&openqaURL, "openqa", openqa.DefaultBaseURL, "openQA server the dashboard links builds to (empty: no links)")
	fl.StringSliceVar(&watch, "watch", []string{"rawhide", "branched"}, "release streams the dashboard shows first")
	return cmd
}
