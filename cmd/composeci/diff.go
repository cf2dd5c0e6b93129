package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/composeci/composeci/fedfind"
)

func newDiffCmd(a *app) *cobra.Command {
	opts := fedfind.DefaultDiffOptions
	cmd := &cobra.Command{
		Use:   "diff [OLD] NEW",
		Short: "Compare the images of two composes",
		Long: `Compare the images of two composes: images only in NEW (added), only in OLD
(removed), and in both but changed. With one compose, OLD is its previous
successful compose (see 'composeci previous').

Images are "the same" when their identity (<subvariant>-<type>-<format>),
arch and disc number agree. An image counts as changed when its size moved by
more than --size-threshold (relative; default 0.1 = 10%), or, with
--checksums, when a checksum changed (every nightly rebuilds every image, so
checksums of two nightlies always differ).

--json prints {"added":[...],"removed":[...],"changed":[...]}, each entry with
at least identity and arch.

Exit codes: 0 no difference, 1 differences found, 2 error.`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, err := a.fedfindClient()
			if err != nil {
				return err
			}
			newRef := args[len(args)-1]
			newC, newImages, err := composeImages(ctx, c, newRef)
			if err != nil {
				return err
			}
			var oldRef string
			if len(args) == 2 {
				oldRef = args[0]
			} else {
				res, err := c.Previous(ctx, newC, fedfind.PreviousOptions{})
				if err != nil {
					return err
				}
				oldRef = res.Compose.ID.String()
			}
			oldC, oldImages, err := composeImages(ctx, c, oldRef)
			if err != nil {
				return err
			}
			d := fedfind.Diff(oldImages, newImages, opts)
			if a.g.json {
				if err := a.printJSON(d); err != nil {
					return err
				}
			} else {
				printDiff(a, oldC.ID.String(), newC.ID.String(), d)
			}
			if !d.Empty() {
				return negative()
			}
			return nil
		},
	}
	cmd.Flags().Float64Var(&opts.SizeThreshold, "size-threshold", opts.SizeThreshold, "relative size change that counts as changed (negative: ignore size)")
	cmd.Flags().BoolVar(&opts.Checksums, "checksums", opts.Checksums, "count a changed checksum as a change")
	return cmd
}

func printDiff(a *app, oldID, newID string, d fedfind.ImageDiff) {
	if d.Empty() {
		fmt.Fprintf(a.stdout, "No image differences between %s and %s.\n", oldID, newID)
		return
	}
	fmt.Fprintf(a.stdout, "Images in %s but not %s (%d):\n", newID, oldID, len(d.Added))
	for _, e := range d.Added {
		fmt.Fprintf(a.stdout, "  + %-8s %s\n", e.Arch, e.Identity)
	}
	fmt.Fprintf(a.stdout, "Images in %s but not %s (%d):\n", oldID, newID, len(d.Removed))
	for _, e := range d.Removed {
		fmt.Fprintf(a.stdout, "  - %-8s %s\n", e.Arch, e.Identity)
	}
	fmt.Fprintf(a.stdout, "Images that changed (%d):\n", len(d.Changed))
	for _, e := range d.Changed {
		fmt.Fprintf(a.stdout, "  ~ %-8s %s: %s -> %s (%+.1f%%)", e.Arch, e.Identity, humanSize(e.OldSize), humanSize(e.Size), 100*e.SizeDiff)
		if len(e.Reasons) > 0 && e.Reasons[len(e.Reasons)-1] == "checksum" {
			fmt.Fprint(a.stdout, ", checksum changed")
		}
		fmt.Fprintln(a.stdout)
	}
}
