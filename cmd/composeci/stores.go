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
	s, err := kvstore.Open(ctx, kvstore.Options{URL: at.URL, CredsFile: at.CredsFile, Prefix: at.Prefix, Lazy: lazy, Logger: a.log})
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
