package main

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/composeci/composeci/fedfind"
)

// fedfindClient returns a client for the configured compose tree.
func (a *app) fedfindClient() (*fedfind.Client, error) {
	c, err := fedfind.NewClient(fedfind.ClientOptions{Root: a.g.composeRoot, HTTP: a.httpClient(), Logger: a.log})
	if err != nil {
		return nil, withCode(exitError, fmt.Errorf("--compose-root: %w", err))
	}
	return c, nil
}

// loadImages makes a client for the compose tree, resolves ref and lists
// its images.
func (a *app) loadImages(ctx context.Context, ref string) (*fedfind.Compose, []fedfind.Image, error) {
	c, err := a.fedfindClient()
	if err != nil {
		return nil, nil, err
	}
	return composeImages(ctx, c, ref)
}

// composeImages resolves ref and lists its images.
func composeImages(ctx context.Context, c *fedfind.Client, ref string) (*fedfind.Compose, []fedfind.Image, error) {
	cm, err := c.Resolve(ctx, ref)
	if err != nil {
		return nil, nil, err
	}
	images, err := c.Images(ctx, cm)
	if err != nil {
		return nil, nil, err
	}
	return cm, images, nil
}

type imageFilter struct {
	arches, types, subvariants []string
	search                     string
}

func (f imageFilter) match(im fedfind.Image) bool {
	in := func(list []string, v string) bool {
		if len(list) == 0 {
			return true
		}
		for _, x := range list {
			if strings.EqualFold(x, v) {
				return true
			}
		}
		return false
	}
	return in(f.arches, im.Arch) && in(f.types, im.Type) && in(f.subvariants, im.Subvariant) &&
		(f.search == "" || strings.Contains(strings.ToLower(im.Path), strings.ToLower(f.search)))
}

func newImagesCmd(a *app) *cobra.Command {
	var f imageFilter
	var urls bool
	cmd := &cobra.Command{
		Use:   "images COMPOSE",
		Short: "List the images of a compose",
		Long: `List the images of a compose, read from its productmd images.json.

COMPOSE is a compose ID (Fedora-Rawhide-20261122.n.0), a compose URL under the
compose root, or a stream for its latest finished compose: rawhide, branched,
branched:44, eln, cloud:44, container:44, iot:44, updates:44,
updates-testing:44, production:44.

Filters take comma-separated values, matched without case; values of one flag
are ORed, flags are ANDed. --json prints every field of every image, with its
identity (<subvariant>-<type>-<format>) and absolute URL.

A filter value that no image of the compose has is named on stderr, with the
values the compose has; fedfind's type "netinst" is productmd's "boot".
--urls prints only the URLs of the images shown, one per line.

Exit codes: 0 listed (even if no image matched), 2 error.`,
		Example: `  composeci images Fedora-Rawhide-20261123.n.0 --arch x86_64 --type live,dvd
  composeci images rawhide --urls --type boot`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			for i, t := range f.types {
				if strings.EqualFold(t, "netinst") {
					// fedfind's name for the network installer.
					f.types[i] = "boot"
					fmt.Fprintln(a.stderr, "composeci: --type netinst: the network installer's productmd type is boot")
				}
			}
			cm, images, err := a.loadImages(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			shown := []fedfind.Image{}
			for _, im := range images {
				if f.match(im) {
					shown = append(shown, im)
				}
			}
			f.warnUnknown(a, cm, images)
			if a.g.json {
				return a.printJSON(shown)
			}
			if urls {
				for _, im := range shown {
					fmt.Fprintln(a.stdout, im.URL)
				}
				return nil
			}
			fmt.Fprintf(a.stdout, "%s: %s", cm.ID, plural(len(images), "image", "images"))
			if len(shown) != len(images) {
				fmt.Fprintf(a.stdout, ", %d match", len(shown))
			}
			fmt.Fprintln(a.stdout)
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ARCH\tVARIANT\tIDENTITY\tSIZE\tPATH")
			for _, im := range shown {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", im.Arch, im.Variant, im.Identity, humanSize(im.Size), im.Path)
			}
			return tw.Flush()
		},
	}
	fl := cmd.Flags()
	fl.StringSliceVar(&f.arches, "arch", nil, "only these arches (x86_64,aarch64,...)")
	fl.StringSliceVar(&f.types, "type", nil, "only these image types (dvd,boot,live,qcow2,raw-xz,...)")
	fl.StringSliceVar(&f.subvariants, "subvariant", nil, "only these subvariants (Server,Workstation,KDE,Cloud_Base,...)")
	fl.StringVar(&f.search, "search", "", "only images whose path contains this text")
	fl.BoolVar(&urls, "urls", false, "print only the images' URLs, one per line (as fedfind images does)")
	return cmd
}

// warnUnknown says on stderr which filter values no image of the compose
// has, with the values it has: a typo matches nothing, silently otherwise.
func (f imageFilter) warnUnknown(a *app, cm *fedfind.Compose, images []fedfind.Image) {
	for _, flt := range []struct {
		flag   string
		values []string
		of     func(fedfind.Image) string
	}{
		{"arch", f.arches, func(im fedfind.Image) string { return im.Arch }},
		{"type", f.types, func(im fedfind.Image) string { return im.Type }},
		{"subvariant", f.subvariants, func(im fedfind.Image) string { return im.Subvariant }},
	} {
		if len(flt.values) == 0 {
			continue
		}
		have := map[string]bool{}
		for _, im := range images {
			have[strings.ToLower(flt.of(im))] = true
		}
		known := strings.Join(slices.Sorted(maps.Keys(have)), ", ")
		for _, v := range flt.values {
			if !have[strings.ToLower(v)] {
				fmt.Fprintf(a.stderr, "composeci: --%s %s: no image of %s has it (it has: %s)\n", flt.flag, v, cm.ID, known)
			}
		}
	}
}

func humanSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
