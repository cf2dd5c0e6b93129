package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/composeci/composeci/fedfind"
)

func newPreviousCmd(a *app) *cobra.Command {
	var opts fedfind.PreviousOptions
	cmd := &cobra.Command{
		Use:   "previous COMPOSE",
		Short: "Find the previous successful compose of the same stream",
		Long: `Print the ID of the previous successful (FINISHED or FINISHED_INCOMPLETE)
compose of COMPOSE's series (same stream and compose type), alone on stdout.

It reads the stream directory's listing once, then the STATUS of candidates
from the newest down — usually two requests. Where the server gives no
listing it probes compose directories back day by day, reading STATUS
directly. --json adds the status, how many requests it took and how.

Exit codes: 0 found, 1 no previous compose within the bounds, 2 error.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.fedfindClient()
			if err != nil {
				return err
			}
			cm, err := c.Resolve(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			res, err := c.Previous(cmd.Context(), cm, opts)
			if errors.Is(err, fedfind.ErrNoPrevious) {
				return withCode(exitNegative, err)
			}
			if err != nil {
				return err
			}
			if a.g.json {
				return a.printJSON(map[string]any{
					"compose_id": cm.ID.String(), "previous_compose_id": res.Compose.ID.String(),
					"status": res.Status, "location": res.Compose.Location,
					"requests": res.Requests, "method": res.Method,
				})
			}
			_, err = fmt.Fprintln(a.stdout, res.Compose.ID)
			return err
		},
	}
	cmd.Flags().IntVar(&opts.MaxDaysBack, "max-days", 14, "when probing, how many days back to look")
	cmd.Flags().IntVar(&opts.MaxCandidates, "max-candidates", 30, "how many composes' STATUS to read at most")
	return cmd
}
