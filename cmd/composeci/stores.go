package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/composeci/composeci/internal/datadir"
	"github.com/composeci/composeci/listener/kvstore"
	"github.com/composeci/composeci/listener/workflow"
	"github.com/composeci/composeci/reports"
	"github.com/composeci/composeci/triage"
)

// storesFile, in a data directory, says that the deployment using it keeps
// its shared stores — reports, ledgers, the registry of known issues — in
// NATS, and where: the one-shot commands follow it, so that `composeci
// known add` or `check` on the host of a `listen --nats` read and change
// what the pipeline does.
const storesFile = "stores.json"

// storesOnNATS is the content of storesFile.
type storesOnNATS struct {
	URL       string `json:"nats"`
	CredsFile string `json:"nats_creds,omitempty"`
	Prefix    string `json:"nats_prefix"`
	// replicas of buckets made or changed (0 keeps what exists); a
	// one-shot command following the file never changes them.
	replicas int
}

// markStores records (or, with an empty URL, forgets) where the service
// using dataDir keeps its stores.
func markStores(dataDir string, s storesOnNATS) error {
	file := filepath.Join(dataDir, storesFile)
	if s.URL == "" {
		if err := os.Remove(file); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return nil
	}
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return datadir.WriteAtomic(file, append(b, '\n'))
}

// stores are a deployment's shared stores: in files under --data (one
// host), or in NATS JetStream (every host of a deployment on a shared
// NATS).
type stores struct {
	Reports reports.Store
	Known   triage.Registry
	Ledger  triage.Ledger
	// OnNATS names where they are when in NATS ("" for files).
	OnNATS string
	Close  func()
}

// fileStores are the stores of one host, under its data directory.
func fileStores(a *app) stores {
	archive := reports.DataArchive(a.g.data)
	archive.Logger = a.log
	return stores{Reports: archive, Known: triage.FileRegistry{Dir: a.g.data}, Ledger: triage.FileLedger{Dir: archive.Dir}, Close: func() {}}
}

// natsStores opens the stores of a deployment on NATS; lazy ones connect
// in the background (for a listen whose embedded server is not up yet).
func natsStores(ctx context.Context, a *app, at storesOnNATS, lazy bool) (stores, error) {
	s, err := kvstore.Open(ctx, kvstore.Options{URL: at.URL, CredsFile: at.CredsFile, Prefix: at.Prefix, Replicas: at.replicas, Lazy: lazy, Logger: a.log})
	if err != nil {
		return stores{}, withCode(exitError, fmt.Errorf("the deployment's stores on NATS: %w", err))
	}
	return stores{Reports: s.Reports, Known: s.Registry, Ledger: s.Ledger, OnNATS: fmt.Sprintf("NATS (prefix %s)", at.Prefix), Close: s.Close}, nil
}

// storeFlags say where the stores are for a one-shot command: --nats (or
// the record a service left in --data) or files under --data.
type storeFlags struct {
	natsURL, natsCreds, natsPrefix string
}

func (f *storeFlags) add(fl *pflag.FlagSet) {
	fl.StringVar(&f.natsURL, "nats", "", "NATS of a deployment that keeps its reports, known issues and re-runs there (default: what the service using --data recorded, else files under --data)")
	fl.StringVar(&f.natsCreds, "nats-creds", "", "NATS credentials file for --nats")
	fl.StringVar(&f.natsPrefix, "nats-prefix", workflow.DefaultPrefix, "the deployment's NATS prefix")
}

// stores opens the stores; Close releases them.
func (f *storeFlags) stores(ctx context.Context, cmd *cobra.Command, a *app) (stores, error) {
	at := storesOnNATS{URL: f.natsURL, CredsFile: f.natsCreds, Prefix: f.natsPrefix}
	if at.URL == "" {
		file := filepath.Join(a.g.data, storesFile)
		b, err := os.ReadFile(file)
		switch {
		case err == nil:
			if err := json.Unmarshal(b, &at); err != nil {
				return stores{}, withCode(exitError, fmt.Errorf("%s: %w", file, err))
			}
			if cmd.Flags().Changed("nats-prefix") {
				at.Prefix = f.natsPrefix
			}
			a.log.Debug("following the stores the service on --data recorded", "file", file, "prefix", at.Prefix)
		case !errors.Is(err, os.ErrNotExist):
			return stores{}, withCode(exitError, err)
		}
	}
	if at.URL == "" {
		return fileStores(a), nil
	}
	return natsStores(ctx, a, at, false)
}

// replicasFlag is --nats-replicas: how many copies a NATS cluster keeps of
// the deployment's streams and buckets.
type replicasFlag struct {
	n   int
	set bool // given on the command line, in the environment or the config file
	fl  *pflag.FlagSet
}

func (r *replicasFlag) add(fl *pflag.FlagSet) {
	r.fl = fl
	fl.IntVar(&r.n, "nats-replicas", 1, "copies a NATS cluster keeps of the streams and buckets (1 to 5; 3 survives the loss of a node); existing ones are changed to it; not given, they keep theirs")
}

// check refuses a count JetStream cannot keep, or more than one copy on
// the embedded server (natsURL empty).
func (r *replicasFlag) check(natsURL string) error {
	r.set = r.fl != nil && r.fl.Changed("nats-replicas")
	if r.n < 1 || r.n > workflow.MaxReplicas {
		return withCode(exitError, fmt.Errorf("--nats-replicas %d: want 1 to %d (3 survives the loss of one node of a cluster)", r.n, workflow.MaxReplicas))
	}
	if r.n > 1 && natsURL == "" {
		return withCode(exitError, fmt.Errorf("--nats-replicas %d needs a NATS cluster (--nats nats://a:4222,nats://b:4222,nats://c:4222): the embedded server is one node and keeps one copy", r.n))
	}
	return nil
}

// replicas is the count for the engine and the stores: the flag's when it
// was given, else 0 — what exists keeps its count, new streams get 1 — so
// that a worker started without the flag never shrinks a replicated
// deployment.
func (r *replicasFlag) replicas() int {
	if !r.set {
		return 0
	}
	return r.n
}
