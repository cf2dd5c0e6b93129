package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/composeci/composeci/fedfind"
)

func newPkgdiffCmd(a *app) *cobra.Command {
	var opts fedfind.SourceOptions
	var trees bool
	cmd := &cobra.Command{
		Use:   "pkgdiff [OLD] NEW",
		Short: "Compare the source packages of two composes",
		Long: `Compare the source packages of two composes, read from each compose's
productmd rpms.json: packages added (only in NEW), removed (only in OLD),
upgraded and downgraded. With one compose, OLD is its previous successful
compose (see 'composeci previous').

Versions are ordered as RPM orders them: the epoch first, then version and
release by rpmvercmp, so 1.0~rc1 < 1.0 < 1.0^git1 < 1.0.1, and 1:0.9 is
newer than 2.0. A package is a source package (bash, not bash-doc): one build
is one change, whatever binary packages it makes.

The changes are rolled up over the variants and arches of each compose (a
package counts once, at the highest version any of them has). --trees also
lists the changes of each variant and arch: a package that moved from one
variant to another, or was upgraded on some arches only. --variant and --arch
(comma-separated, any case) read only those variants and arches.

--json prints {"old","new","added":[{"name","nevr"}],"removed":[...],
"upgraded":[{"name","from","to"}],"downgraded":[...],"unchanged":N,
"trees":[{"variant","arch","added",...}]}, "trees" listing the variants and
arches that changed.

Exit codes: 0 no changes, 1 changes found, 2 error (a compose or its
rpms.json not found — the metadata archive keeps none for composes whose
trees were garbage-collected — or no variant and arch matching --variant and
--arch).`,
		Example: `  composeci pkgdiff Fedora-Rawhide-20261123.n.0
  composeci pkgdiff Fedora-Rawhide-20261122.n.1 Fedora-Rawhide-20261123.n.0 --arch x86_64 --trees
  composeci pkgdiff rawhide --variant Everything --json | jq -r '.upgraded[] | "\(.name) \(.from) -> \(.to)"'`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, err := a.fedfindClient()
			if err != nil {
				return err
			}
			newC, err := c.Resolve(ctx, args[len(args)-1])
			if err != nil {
				return err
			}
			var oldC *fedfind.Compose
			if len(args) == 2 {
				if oldC, err = c.Resolve(ctx, args[0]); err != nil {
					return err
				}
			} else {
				res, err := c.Previous(ctx, newC, fedfind.PreviousOptions{})
				if err != nil {
					return err
				}
				oldC = res.Compose
			}
			d, err := c.PackageDiff(ctx, oldC, newC, opts)
			if err != nil {
				return err
			}
			if a.g.json {
				if err := a.printJSON(d); err != nil {
					return err
				}
			} else if err := printPackageDiff(a.stdout, d, trees); err != nil {
				return err
			}
			if !d.Empty() {
				return negative()
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringSliceVar(&opts.Variants, "variant", nil, "only these variants (Everything,Server,...)")
	fl.StringSliceVar(&opts.Arches, "arch", nil, "only these arches (x86_64,aarch64,...)")
	fl.BoolVar(&trees, "trees", false, "also list the changes of each variant and arch")
	return cmd
}

// printPackageDiff writes the diff for people: a summary line, then the
// packages of each kind of change, aligned.
func printPackageDiff(w io.Writer, d fedfind.PackageChanges, trees bool) error {
	if d.Empty() {
		_, err := fmt.Fprintf(w, "No source package changes from %s to %s (%s).\n", d.Old, d.New, plural(d.Unchanged, "package", "packages"))
		return err
	}
	fmt.Fprintf(w, "Source packages from %s to %s: %s.\n", d.Old, d.New, summary(d.SourceChanges))
	if err := printChanges(w, d.SourceChanges, ""); err != nil {
		return err
	}
	if len(d.Trees) == 0 {
		return nil
	}
	if !trees {
		what := "they are"
		if d.SourceChanges.Empty() {
			what = "the roll-up hides them, but they are"
		}
		if len(d.Trees) == 1 {
			what = strings.NewReplacer("them", "it", "they are", "it is").Replace(what)
		}
		trees := plural(len(d.Trees), "variant and arch tree", "variant and arch trees")
		_, err := fmt.Fprintf(w, "%s changed; %s listed with --trees.\n", trees, what)
		return err
	}
	for _, t := range d.Trees {
		fmt.Fprintf(w, "\n%s/%s: %s.\n", t.Variant, t.Arch, summary(t.SourceChanges))
		if err := printChanges(w, t.SourceChanges, "  "); err != nil {
			return err
		}
	}
	return nil
}

func summary(c fedfind.SourceChanges) string {
	return fmt.Sprintf("%d added, %d removed, %d upgraded, %d downgraded, %d unchanged",
		len(c.Added), len(c.Removed), len(c.Upgraded), len(c.Downgraded), c.Unchanged)
}

func printChanges(w io.Writer, c fedfind.SourceChanges, indent string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	refs := func(title, mark string, list []fedfind.PackageRef) {
		if len(list) == 0 {
			return
		}
		fmt.Fprintf(tw, "%s%s (%d):\n", indent, title, len(list))
		for _, p := range list {
			fmt.Fprintf(tw, "%s  %s %s\t%s\n", indent, mark, p.Name, p.NEVR.EVR)
		}
	}
	updates := func(title, mark string, list []fedfind.PackageUpdate) {
		if len(list) == 0 {
			return
		}
		fmt.Fprintf(tw, "%s%s (%d):\n", indent, title, len(list))
		for _, p := range list {
			fmt.Fprintf(tw, "%s  %s %s\t%s\t-> %s\n", indent, mark, p.Name, p.From, p.To)
		}
	}
	refs("Added", "+", c.Added)
	refs("Removed", "-", c.Removed)
	updates("Upgraded", "^", c.Upgraded)
	updates("Downgraded", "v", c.Downgraded)
	return tw.Flush()
}
