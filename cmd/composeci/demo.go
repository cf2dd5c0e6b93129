package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newDemoCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "demo",
		Short: "Run composeci against a simulated Fedora (no services needed)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintln(a.stdout, "composeci demo: the simulated Fedora is being built; nothing to show yet.")
			return err
		},
	}
}
